#include "k8s/detail/json_split.h"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <cstdint>
#include <string>
#include <vector>

using kdp::k8s::detail::splitListItems;

namespace {

std::vector<std::string> items(std::string_view json) {
  auto split = splitListItems(json);
  REQUIRE(split);
  std::vector<std::string> out;
  for (auto [b, e] : split->items) {
    out.emplace_back(json.substr(b, e - b));
  }
  return out;
}

}  // namespace

TEST_CASE("json_split: finds each item of the items array", "[decode][split]") {
  CHECK(items(R"({"kind":"List","items":[{"a":"x\"]}"},[1,[2]],"s",3,true,null,{}],"metadata":{}})") ==
        std::vector<std::string>{R"({"a":"x\"]}"})", "[1,[2]]", R"("s")", "3", "true", "null",
                                 "{}"});
  CHECK(items(" {\n \"items\" :\t[ 1 , -2.5e3 ,{ } ] , \"kind\" : \"List\" }\n ") ==
        std::vector<std::string>{"1", "-2.5e3", "{ }"});
  CHECK(items(R"({"items":[{"a":"\\\\"},{"b":"\\\"}{"},{"c":"\\"}]})") ==
        std::vector<std::string>{R"({"a":"\\\\"})", R"({"b":"\\\"}{"})", R"({"c":"\\"})"});
  auto empty = splitListItems(R"({"kind":"List","items":[ ]})");
  REQUIRE(empty);
  CHECK(empty->items.empty());
  // The items array's own brackets, for the envelope.
  const std::string json = R"({"kind":"List","items":[1,2]})";
  auto split = splitListItems(json);
  REQUIRE(split);
  CHECK(json[split->arrayOpen] == '[');
  CHECK(json[split->arrayClose] == ']');
}

TEST_CASE("json_split: texts it does not split", "[decode][split]") {
  for (const char* json : {
           "", "   ", "[1,2]", "\"items\"", "{}", R"({"kind":"Service"})", R"({"items":{}})",
           R"({"items":null})", R"({"items":[1],"items":[2]})", R"({"items":[1,]})",
           R"({"items":[1 2]})", R"({"items":[)", R"({"items":[{"a":1})", R"({"items":[1]} x)",
           R"({"items":[1]},)", R"({"items" [1]})", R"({"kind":"List" "items":[1]})",
           R"({"items":[{"a":"unterminated}]})", R"({items:[1]})", R"({"items":[,1]})"}) {
    CAPTURE(json);
    CHECK_FALSE(splitListItems(json));
  }
}

TEST_CASE("json_split: agrees with a JSON parser on generated lists", "[decode][split]") {
  // Strings with quotes, backslashes and brackets at every offset around the 16-byte blocks.
  std::uint64_t x = 88172645463325252ull;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  const std::string pieces[] = {"\\\"", "\\\\", "]", "}", "[", "{", "a", "\\n", ",", "\\u005d"};
  simdjson::dom::parser parser;
  for (int round = 0; round < 200; ++round) {
    std::string json = R"({"kind":"List","items":[)";
    const int n = 1 + static_cast<int>(next() % 8);
    for (int i = 0; i < n; ++i) {
      if (i) {
        json += ',';
      }
      json += R"({"k":")";
      const int len = static_cast<int>(next() % 40);
      for (int c = 0; c < len; ++c) {
        json += pieces[next() % std::size(pieces)];
      }
      json += R"(","n":[[)" + std::to_string(next() % 1000) + R"(],{"x":"]"}]})";
    }
    json += "]}";
    CAPTURE(json);
    auto split = splitListItems(json);
    REQUIRE(split);
    simdjson::dom::element whole;
    REQUIRE(parser.parse(json).get(whole) == simdjson::SUCCESS);
    simdjson::dom::array array;
    REQUIRE(whole["items"].get_array().get(array) == simdjson::SUCCESS);
    std::vector<std::string> expected;
    for (simdjson::dom::element item : array) {
      expected.push_back(simdjson::minify(item));
    }
    REQUIRE(split->items.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      auto [b, e] = split->items[i];
      simdjson::dom::parser itemParser;
      simdjson::dom::element item;
      REQUIRE(itemParser.parse(json.substr(b, e - b)).get(item) == simdjson::SUCCESS);
      CHECK(simdjson::minify(item) == expected[i]);
    }
  }
}
