// Decoding entry points. Design: JSON is walked with simdjson's DOM by one typed decoder per kind
// (k8s/detail/decode_*.cpp); YAML is first turned into JSON text (k8s/detail/yaml_to_json) and
// then takes exactly the same path, so both formats get the same defaults, validation and
// error messages.

#include "k8s/decode.h"

#include "k8s/detail/json_decode.h"
#include "k8s/detail/yaml_to_json.h"

namespace kdp::k8s {

std::string DecodeError::str() const {
  std::string out = source;
  if (document >= 0) {
    out += "[doc ";
    out += std::to_string(document);
    out += ']';
  }
  auto space = [&] {
    if (!out.empty()) {
      out += ' ';
    }
  };
  if (!kind.empty()) {
    space();
    out += kind;
  }
  if (!name.empty()) {
    space();
    if (!namespace_.empty()) {
      out += namespace_;
      out += '/';
    }
    out += name;
  }
  if (!field.empty()) {
    if (!out.empty()) {
      out += ": ";
    }
    out += field;
  }
  if (!out.empty()) {
    out += ": ";
  }
  out += message;
  return out;
}

DecodeResult decodeJson(std::string_view text, std::string_view source,
                        std::optional<Kind> itemKind) {
  DecodeResult result;
  const detail::JsonDocumentOptions options{source, -1, itemKind, true};
  if (auto error = detail::decodeJsonDocument(text, /*padded=*/false, options, result)) {
    result = DecodeResult{};
    result.syntaxError = true;
    result.errors.push_back(std::move(*error));
  }
  return result;
}

void releaseDecodeBuffers() { detail::releaseThreadParser(); }

DecodeResult decodeYaml(std::string_view text, std::string_view source) {
  DecodeResult result;
  std::optional<DecodeError> jsonError;
  auto yamlError = detail::yamlToJson(text, [&](int document, std::string& json) {
    if (jsonError) {
      return;  // the stream is refused already; the rest is not decoded
    }
    const detail::JsonDocumentOptions options{source, document, std::nullopt, false};
    // yamlToJson leaves kJsonPadding bytes of capacity: simdjson parses the text in place.
    jsonError = detail::decodeJsonDocument(json, /*padded=*/true, options, result);
  });
  if (yamlError) {
    result = DecodeResult{};
    result.syntaxError = true;
    result.errors.push_back(DecodeError{std::string(source), yamlError->document, {}, {}, {}, {},
                                        "invalid YAML: " + yamlError->str()});
  } else if (jsonError) {
    // The JSON was made from YAML: say what was wrong with the YAML (mostly: not UTF-8).
    constexpr std::string_view kJsonPrefix = "invalid JSON: ";
    if (std::string_view(jsonError->message).starts_with(kJsonPrefix)) {
      jsonError->message.replace(0, kJsonPrefix.size(), "invalid YAML: ");
    }
    result = DecodeResult{};
    result.syntaxError = true;
    result.errors.push_back(std::move(*jsonError));
  }
  return result;
}

DecodeResult decodeApiList(std::string_view text, Kind kind, ListMeta& meta) {
  DecodeResult result;
  detail::JsonDocumentOptions options{"api", -1, kind, true};
  options.listMeta = &meta;
  if (auto error = detail::decodeJsonDocument(text, /*padded=*/false, options, result)) {
    result = DecodeResult{};
    result.syntaxError = true;
    result.errors.push_back(std::move(*error));
  }
  return result;
}

bool decodeWatchEvent(std::string_view text, Kind kind, WatchEvent& event, std::string& error) {
  return detail::decodeWatchEventDocument(text, kind, event, error);
}

std::string decodeApiStatusMessage(std::string_view text) {
  return detail::decodeApiStatusMessage(text);
}

std::vector<std::string> decodeApiGroupVersions(std::string_view text) {
  return detail::decodeApiGroupVersions(text);
}

}  // namespace kdp::k8s
