#pragma once
// Decoding of Kubernetes objects from YAML (manifests) and JSON (the API's wire format), with the
// validation the API server applies to the fields the data plane uses. Pure: no I/O.
//
// Every decoder reports a bad object as a DecodeError naming where it was (source, document,
// kind/namespace/name, field) and goes on with the next object: one bad object never hides the
// others. Kinds the data plane does not use are counted in `skipped` and otherwise ignored.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "k8s/objects.h"

namespace kdp::k8s {

struct DecodeError {
  std::string source;     // file path or "api"; may be empty
  int document = -1;      // 0-based YAML document or List item index; -1 when not applicable
  std::string kind;       // as written, when known
  std::string namespace_;
  std::string name;
  std::string field;      // JSON path such as "spec.ports[0].port"; empty for whole-document errors
  std::string message;

  /// One line: `web.yaml[doc 1] Service default/web: spec.ports[0].port: must be ...`
  std::string str() const;
};

struct DecodeResult {
  std::vector<Object> objects;
  std::vector<DecodeError> errors;
  std::size_t skipped = 0;   // objects of kinds the data plane does not use
  /// The text itself could not be read (YAML/JSON syntax, size limits): `objects` is empty and
  /// `errors` says why. A manifests source keeps the file's previous objects in that case.
  bool syntaxError = false;
};

/// Frees this thread's decoding buffers. They grow to the largest text decoded and stay, so that
/// a stream of decodes allocates nothing; a thread that has decoded its last text (the one that
/// read a manifests directory's first state) gives them back with this.
void releaseDecodeBuffers();

/// A YAML stream: one or more documents, each an object or a `kind: List`.
DecodeResult decodeYaml(std::string_view text, std::string_view source);

/// JSON text: an object, or a List (`kind: List` or an API `<Kind>List` response).
/// `itemKind` names the kind of List items that carry no `kind` field (API LIST responses).
DecodeResult decodeJson(std::string_view text, std::string_view source,
                        std::optional<Kind> itemKind = std::nullopt);

// --- The Kubernetes API's wire format (LIST responses and WATCH events) ----------------------

/// metadata of an API LIST response.
struct ListMeta {
  std::string resourceVersion;
  std::string continueToken;  // metadata.continue: "" on the last page
};

/// One page of an API LIST of `kind` (`<Kind>List`, items without kind/apiVersion), item by item
/// as decodeJson; `meta` gets the list's metadata.
DecodeResult decodeApiList(std::string_view text, Kind kind, ListMeta& meta);

enum class WatchEventType : std::uint8_t { Added, Modified, Deleted, Bookmark, Error };

/// One event of an API WATCH stream of `kind`.
struct WatchEvent {
  WatchEventType type = WatchEventType::Error;
  /// Added/Modified/Deleted: the object, when it decoded (else `result.errors` says why, or
  /// `result.skipped` counts a kind of another group).
  DecodeResult result;
  /// The object's metadata, read even when the object did not decode (a Deleted event still
  /// removes it): namespace ("default" when absent for namespaced kinds), name, resourceVersion.
  /// Bookmark: resourceVersion only.
  std::string namespace_, name, resourceVersion;
  /// Error: the Status object (code 410 with reason "Expired" or "Gone": relist).
  std::int64_t errorCode = 0;
  std::string errorReason, errorMessage;
};

/// Decodes one WATCH event (a whole JSON object, see k8s/detail/json_stream.h for framing).
/// Returns false, with `error`, when the text is not an event at all (syntax, no type or object,
/// an unknown type).
bool decodeWatchEvent(std::string_view text, Kind kind, WatchEvent& event, std::string& error);

/// The message of an API Status object (the body of an error response); "" when there is none.
std::string decodeApiStatusMessage(std::string_view text);

/// The versions an API group serves, from its discovery document (GET /apis/<group>), preferred
/// first. Empty when the text is not an APIGroup.
std::vector<std::string> decodeApiGroupVersions(std::string_view text);

}  // namespace kdp::k8s
