#include "k8s/detail/yaml_to_json.h"

#include <catch2/catch.hpp>

#include <string>

using kdp::k8s::detail::appendJsonString;
using kdp::k8s::detail::kJsonPadding;
using kdp::k8s::detail::YamlLimits;
using kdp::k8s::detail::yamlToJson;

namespace {

// The JSON of a single-document stream, or "ERROR: <message>".
std::string toJson(const std::string& yaml, const YamlLimits& limits = {}) {
  auto r = yamlToJson(yaml, limits);
  if (r.error) {
    return "ERROR: " + r.error->str();
  }
  REQUIRE(r.documents.size() == 1);
  return r.documents[0];
}

// The JSON of `value` as the value of key "v".
std::string scalar(const std::string& value) {
  std::string json = toJson("v: " + value + "\n");
  REQUIRE(json.starts_with("{\"v\":"));
  return json.substr(5, json.size() - 6);
}

}  // namespace

TEST_CASE("yaml_to_json: plain scalars resolve per the YAML 1.2 core schema", "[decode][yaml]") {
  auto [in, out] = GENERATE(table<std::string, std::string>({
      {"~", "null"},
      {"null", "null"},
      {"Null", "null"},
      {"NULL", "null"},
      {"", "null"},
      {"true", "true"},
      {"True", "true"},
      {"TRUE", "true"},
      {"false", "false"},
      {"False", "false"},
      {"FALSE", "false"},
      {"yes", "\"yes\""},  // YAML 1.1 booleans are strings in 1.2
      {"on", "\"on\""},
      {"nUll", "\"nUll\""},
      {"tRUE", "\"tRUE\""},
      {"0", "0"},
      {"-0", "0"},
      {"+12", "12"},
      {"-12", "-12"},
      {"0012", "12"},
      {"0x1F", "31"},
      {"0o17", "15"},
      {"0x", "\"0x\""},
      {"0o8", "\"0o8\""},
      {"9223372036854775807", "9223372036854775807"},
      {"-9223372036854775808", "-9223372036854775808"},
      {"18446744073709551615", "18446744073709551615"},
      {"99999999999999999999", "100000000000000000000"},  // beyond 64 bits: a float
      {"1.5", "1.5"},
      {"80.0", "80"},  // as Go's encoding/json writes float64(80)
      {"1e3", "1000"},
      {"1.5e-7", "1.5e-07"},
      {"1e30", "1e+30"},
      {".5", "0.5"},
      {"-.5", "-0.5"},
      {"1.", "1"},
      {"1e400", "\"1e400\""},  // not finite: kept as text
      {".inf", "\".inf\""},
      {"-.Inf", "\"-.Inf\""},
      {".nan", "\".nan\""},
      {"1_000", "\"1_000\""},
      {"1.2.3", "\"1.2.3\""},
      {"10.0.0.1", "\"10.0.0.1\""},
      {"-a", "\"-a\""},
      {"+", "\"+\""},
      {".", "\".\""},
      {"e5", "\"e5\""},
      {"1e", "\"1e\""},
      {"hello world", "\"hello world\""},
      {"a \"quoted\" \\ word", "\"a \\\"quoted\\\" \\\\ word\""},
  }));
  CAPTURE(in);
  CHECK(scalar(in) == out);
}

TEST_CASE("yaml_to_json: quoted, block and tagged scalars", "[decode][yaml]") {
  CHECK(scalar("\"80\"") == "\"80\"");
  CHECK(scalar("'true'") == "\"true\"");
  CHECK(scalar("\"\"") == "\"\"");
  CHECK(scalar("'null'") == "\"null\"");
  CHECK(scalar("\"tab\\there\\u0001\"") == "\"tab\\there\\u0001\"");
  CHECK(scalar("!!str 123") == "\"123\"");
  CHECK(scalar("!!int 123") == "123");
  CHECK(scalar("!!float 1") == "1");
  CHECK(scalar("!!bool true") == "true");
  CHECK(scalar("!!null ~") == "null");
  CHECK(scalar("!custom 123") == "\"123\"");
  CHECK(toJson("v: !!int abc\n").starts_with("ERROR: line 1"));
  CHECK(toJson("v: |\n  line1\n  line2\n") == "{\"v\":\"line1\\nline2\\n\"}");
  CHECK(toJson("v: >-\n  folded\n  text\n") == "{\"v\":\"folded text\"}");
}

TEST_CASE("yaml_to_json: structure, keys and flow style", "[decode][yaml]") {
  CHECK(toJson("a: 1\nb: [x, 2, {c: d}]\ne: {}\nf: []\n") ==
        R"({"a":1,"b":["x",2,{"c":"d"}],"e":{},"f":[]})");
  CHECK(toJson("- 1\n- - 2\n  - 3\n") == "[1,[2,3]]");
  // Keys are strings whatever they look like.
  CHECK(toJson("80: a\ntrue: b\n~: c\n\"q\": d\n") == R"({"80":"a","true":"b","null":"c","q":"d"})");
  CHECK(toJson("? [1]\n: z\n").starts_with("ERROR: line 1"));
  CHECK(toJson("? {a: 1}\n: z\n").starts_with("ERROR:"));
  CHECK(toJson("plain").starts_with("\"plain\""));
}

TEST_CASE("yaml_to_json: anchors and aliases are expanded", "[decode][yaml]") {
  CHECK(toJson("a: &x [1, 2]\nb: *x\n") == R"({"a":[1,2],"b":[1,2]})");
  CHECK(toJson("a: &p 80\nb: *p\n") == R"({"a":80,"b":80})");
  CHECK(toJson("a: &s \"80\"\nb: *s\n") == R"({"a":"80","b":"80"})");
  CHECK(toJson("&k key: 1\nother: *k\n") == R"({"key":1,"other":"key"})");
  CHECK(toJson("a: &k name\n*k : 2\n") == R"({"a":"name","name":2})");
  CHECK(toJson("a: &m {x: 1}\nb: [*m, *m]\n") == R"({"a":{"x":1},"b":[{"x":1},{"x":1}]})");
  CHECK(toJson("a: &n\nb: *n\n") == R"({"a":null,"b":null})");
  CHECK(toJson("a: *undefined\n").starts_with("ERROR: line 1"));
  CHECK(toJson("a: &m [1]\n*m : 2\n").starts_with("ERROR:"));
}

TEST_CASE("yaml_to_json: a billion-laughs alias bomb fails with a clear error", "[decode][yaml]") {
  std::string bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'j'; ++c, ++prev) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 9; ++i) {
      bomb += std::string(i ? "," : "") + "*" + prev;
    }
    bomb += "]\n";
  }
  auto r = yamlToJson(bomb);
  REQUIRE(r.error);
  CHECK(r.documents.empty());
  CHECK(r.error->message.find("more than 67108864 bytes") != std::string::npos);
  CHECK(r.error->line > 0);

  // The same structure under a small limit, and a harmless one under the default.
  YamlLimits small;
  small.maxJsonBytes = 200;
  CHECK(yamlToJson("a: &a [1,2,3,4,5,6,7,8,9,10]\nb: [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n",
                   small)
            .error);
}

TEST_CASE("yaml_to_json: nesting beyond the depth limit fails", "[decode][yaml]") {
  YamlLimits limits;
  limits.maxDepth = 100;
  std::string ok = std::string(100, '[') + std::string(100, ']');
  CHECK(yamlToJson(ok, limits).documents.size() == 1);
  std::string deep = std::string(101, '[') + std::string(101, ']');
  auto r = yamlToJson(deep, limits);
  REQUIRE(r.error);
  CHECK(r.error->message.find("deeper than 100") != std::string::npos);
  // Through aliases: depth counts the expanded structure.
  std::string viaAlias = "a: &a " + std::string(60, '[') + std::string(60, ']') + "\nb: " +
                         std::string(50, '[') + "*a" + std::string(50, ']') + "\n";
  CHECK(yamlToJson(viaAlias, limits).error);
  // Far deeper than the parser's own guard: an error, no stack overflow.
  std::string huge = std::string(200000, '[') + std::string(200000, ']');
  CHECK(yamlToJson(huge, limits).error);
  std::string hugeMaps;
  for (int i = 0; i < 50000; ++i) {
    hugeMaps += "{a: ";
  }
  CHECK(yamlToJson(hugeMaps, limits).error);
}

TEST_CASE("yaml_to_json: multi-document streams skip empty documents", "[decode][yaml]") {
  auto r = yamlToJson("---\n---\na: 1\n...\n---\n# only a comment\n---\nb: 2\n---\n");
  REQUIRE_FALSE(r.error);
  REQUIRE(r.documents.size() == 2);
  CHECK(r.documents[0] == R"({"a":1})");
  CHECK(r.documents[1] == R"({"b":2})");

  std::vector<int> indexes;
  auto err = yamlToJson("a: 1\n---\n---\nb: 2\n", [&](int doc, std::string& json) {
    indexes.push_back(doc);
    CHECK(json.capacity() >= json.size() + kJsonPadding);
  });
  CHECK_FALSE(err);
  CHECK(indexes == std::vector<int>{0, 2});

  CHECK(yamlToJson("").documents.empty());
  CHECK_FALSE(yamlToJson("").error);
  CHECK(yamlToJson("# nothing\n").documents.empty());
}

TEST_CASE("yaml_to_json: syntax errors carry the line and the document", "[decode][yaml]") {
  auto r = yamlToJson("a: 1\n---\nb: 2\nc: [1,\n");
  REQUIRE(r.error);
  CHECK(r.documents.empty());
  CHECK(r.error->document == 1);
  CHECK(r.error->line >= 4);
  CHECK(r.error->str().starts_with("line "));

  r = yamlToJson("a: b: c\n");
  REQUIRE(r.error);
  CHECK(r.error->line == 1);
  CHECK(yamlToJson("key: \"unterminated").error);
  CHECK(yamlToJson("\t- tab indented\n").error);
}

TEST_CASE("yaml_to_json: inputs that make yaml-cpp 0.7 loop are errors", "[decode][yaml]") {
  // jbeder/yaml-cpp#1040: a ',' where a document should start.
  for (const char* text : {",", "&d,", "!t ,", "a: 1\n---\n,\n", "---\n, x\n"}) {
    CAPTURE(text);
    auto r = yamlToJson(text);
    REQUIRE(r.error);
    CHECK(r.documents.empty());
  }
  auto r = yamlToJson("a: 1\n---\n,\n");
  REQUIRE(r.error);
  CHECK(r.error->message == "unexpected character ','");
  CHECK(r.error->line == 3);
}

TEST_CASE("yaml_to_json: hostile bytes give an error or JSON, never a crash", "[decode][yaml]") {
  std::string garbage;
  std::uint32_t x = 12345;
  for (int i = 0; i < 4096; ++i) {
    x = x * 1103515245 + 12345;
    garbage += static_cast<char>(x >> 16);
  }
  for (std::size_t len : {1u, 7u, 100u, 1000u, 4096u}) {
    auto r = yamlToJson(garbage.substr(0, len));
    CHECK((r.error || r.documents.size() <= 64));
  }
  std::string nuls("a: \0\0\0\n", 8);
  (void)yamlToJson(nuls);
  (void)yamlToJson("\xef\xbb\xbf" "a: 1\n");  // BOM
  (void)yamlToJson("\xff\xfe" "a\0:\0 \0" "1\0");  // UTF-16 BOM
  SUCCEED();
}

TEST_CASE("yaml_to_json: big strings pass through", "[decode][yaml]") {
  std::string big(10 << 20, 'x');
  auto r = yamlToJson("v: " + big + "\n");
  REQUIRE_FALSE(r.error);
  REQUIRE(r.documents.size() == 1);
  CHECK(r.documents[0].size() == big.size() + 8);
}

TEST_CASE("yaml_to_json: JSON string escaping", "[decode][yaml]") {
  std::string out;
  appendJsonString(out, std::string("a\"b\\c\n\r\t\b\f\x01\x1f\x7f\xc3\xa9", 15));
  CHECK(out == "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\xc3\xa9\"");
}
