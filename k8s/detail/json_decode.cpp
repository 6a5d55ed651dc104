#include "k8s/detail/json_decode.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#include "k8s/detail/decode_kinds.h"
#include "k8s/detail/json_reader.h"
#include "k8s/detail/json_split.h"

namespace kdp::k8s::detail {

namespace {

/// Nesting allowed in a JSON text. Kubernetes objects nest a dozen levels; this refuses
/// "[[[[..." bombs early, before the typed decoders (which only follow known fields) see them.
constexpr std::size_t kMaxJsonDepth = 128;
/// Buffers grown beyond this for one big text are freed afterwards rather than kept per thread.
constexpr std::size_t kRetainedParserBytes = std::size_t{64} << 20;
/// Smallest capacity allocated, so that a stream of small texts does not regrow step by step.
constexpr std::size_t kMinParserCapacity = std::size_t{64} << 10;

/// Grows a capacity by half again at least, so that texts of slowly rising size do not
/// reallocate each time.
std::size_t grownCapacity(std::size_t current, std::size_t needed) {
  return std::min(std::max({needed, current + current / 2, kMinParserCapacity}),
                  std::max(needed, kMaxJsonTextBytes));
}

/// This thread's simdjson parser, and a padded copy of input that comes without padding. Both
/// are reused: they grow to the largest text seen and stay, so that a steady stream of decodes
/// allocates nothing here.
class ThreadParser {
 public:
  simdjson::simdjson_result<dom::element> parse(std::string_view text, bool padded) {
    if (text.size() > capacity_) {
      const std::size_t cap = grownCapacity(capacity_, text.size());
      capacity_ = 0;
      if (parser_.allocate(cap, kMaxJsonDepth) != simdjson::SUCCESS ||
          parser_.doc.allocate(cap) != simdjson::SUCCESS) {
        return simdjson::MEMALLOC;
      }
      capacity_ = cap;
    }
    const char* data = text.data();
    if (!padded) {
      // simdjson reads up to SIMDJSON_PADDING bytes past the end, and the caller's text may end
      // at a page boundary: one copy, into a buffer kept for the next text.
      if (text.size() > copyCapacity_) {
        const std::size_t cap = grownCapacity(copyCapacity_, text.size());
        copyCapacity_ = 0;
        copy_.reset(new (std::nothrow) char[cap + kJsonPadding]);
        if (!copy_) {
          return simdjson::MEMALLOC;
        }
        copyCapacity_ = cap;
      }
      std::memcpy(copy_.get(), text.data(), text.size());
      std::memset(copy_.get() + text.size(), 0, kJsonPadding);
      data = copy_.get();
    }
    return parser_.parse(data, text.size(), /*realloc_if_needed=*/false);
  }

  std::size_t bytesHeld() const { return std::max(capacity_, copyCapacity_); }

 private:
  simdjson::dom::parser parser_{kMaxJsonTextBytes};
  std::size_t capacity_ = 0;
  std::unique_ptr<char[]> copy_;
  std::size_t copyCapacity_ = 0;
};

thread_local std::unique_ptr<ThreadParser> tParser;

ThreadParser& threadParser() {
  if (!tParser) {
    tParser = std::make_unique<ThreadParser>();
  }
  return *tParser;
}

}  // namespace

void releaseThreadParser() { tParser.reset(); }

namespace {

void releaseThreadParserIfHuge() {
  if (tParser && tParser->bytesHeld() > kRetainedParserBytes) {
    tParser.reset();
  }
}

enum class ApiVersionCheck { Ok, Foreign, Unsupported };

// Kind + group names a resource type: the same kind in another group (Knative's Service, a
// CRD's Node) is not ours and is skipped; an old version of our group is refused.
ApiVersionCheck checkApiVersion(Kind kind, std::string_view apiVersion,
                                std::string_view& supported) {
  const auto slash = apiVersion.find('/');
  const std::string_view group =
      slash == std::string_view::npos ? std::string_view{} : apiVersion.substr(0, slash);
  const std::string_view version =
      slash == std::string_view::npos ? apiVersion : apiVersion.substr(slash + 1);
  switch (kind) {
    case Kind::Ingress:
      supported = "networking.k8s.io/v1";
      if (group == "networking.k8s.io" || group == "extensions") {
        return group == "networking.k8s.io" && version == "v1" ? ApiVersionCheck::Ok
                                                               : ApiVersionCheck::Unsupported;
      }
      return ApiVersionCheck::Foreign;
    case Kind::IngressClass:
      supported = "networking.k8s.io/v1";
      if (group == "networking.k8s.io") {
        return version == "v1" ? ApiVersionCheck::Ok : ApiVersionCheck::Unsupported;
      }
      return ApiVersionCheck::Foreign;
    case Kind::EndpointSlice:
      supported = "discovery.k8s.io/v1, discovery.k8s.io/v1beta1";
      if (group == "discovery.k8s.io") {
        return version == "v1" || version == "v1beta1" ? ApiVersionCheck::Ok
                                                       : ApiVersionCheck::Unsupported;
      }
      return ApiVersionCheck::Foreign;
    default:
      supported = "v1";
      if (group.empty()) {
        return version == "v1" ? ApiVersionCheck::Ok : ApiVersionCheck::Unsupported;
      }
      return ApiVersionCheck::Foreign;
  }
}

class DocumentDecoder {
 public:
  DocumentDecoder(const JsonDocumentOptions& options, DecodeResult& out)
      : options_(options), out_(out) {}

  /// How the items of a List are read.
  struct ListPlan {
    std::string fallbackKind;  // for items without `kind`
    bool apiList = false;      // items may omit apiVersion
  };
  enum class Shape { Object, List, Refused };

  /// Whether `root` is one object or a List (then `plan`, and `items` when it has any). A root
  /// that is neither is recorded as an error.
  Shape classify(dom::element root, ListPlan& plan, std::optional<dom::array>& items) {
    dom::object object;
    if (root.get_object().get(object) != simdjson::SUCCESS) {
      addError(options_.document, {}, {}, {}, "",
               "expected a JSON object, got " + std::string(typeName(root.type())));
      return Shape::Refused;
    }
    RootFields f = RootFields::scan(object);
    std::string_view kind;
    if (f.kind && f.kind->type() == dom::element_type::STRING) {
      kind = f.kind->get_string().value_unsafe();
    }
    if (kind != "List" && !(f.items && (kind.empty() || kind.ends_with("List")))) {
      return Shape::Object;
    }
    if (options_.listMeta) {
      readListMeta(f, *options_.listMeta);
    }
    // Items without `kind`: the caller's itemKind, else what "<Kind>List" says.
    if (options_.itemKind) {
      plan.fallbackKind = kindName(*options_.itemKind);
    } else if (kind.size() > 4 && kind != "List") {
      plan.fallbackKind = kind.substr(0, kind.size() - 4);
    }
    // Items of an API LIST response carry no apiVersion; kubectl's `kind: List` items must.
    plan.apiList = kind != "List" || options_.itemKind.has_value();
    if (f.items && f.items->type() != dom::element_type::NULL_VALUE) {
      dom::array a;
      if (f.items->get_array().get(a) != simdjson::SUCCESS) {
        addError(options_.document, kind, {}, {}, "items",
                 "expected array, got " + std::string(typeName(f.items->type())));
        return Shape::Refused;
      }
      items = a;
    }
    return Shape::List;
  }

  /// A whole parsed text: one object, or a List and all its items.
  void decodeRoot(dom::element root) {
    ListPlan plan;
    std::optional<dom::array> items;
    switch (classify(root, plan, items)) {
      case Shape::Refused:
        return;
      case Shape::Object:
        decodeItem(root, std::nullopt,
                   options_.itemKind ? kindName(*options_.itemKind) : std::string_view{},
                   options_.itemKind.has_value());
        return;
      case Shape::List:
        if (items) {
          out_.objects.reserve(out_.objects.size() + items->size());
          std::size_t i = 0;
          for (dom::element item : *items) {
            decodeItem(item, i++, plan.fallbackKind, plan.apiList);
          }
        }
        return;
    }
  }

  /// One object: a whole text, or the item `index` of a List.
  void decodeItem(dom::element element, std::optional<std::size_t> index,
                  std::string_view fallbackKind, bool apiVersionOptional) {
    const bool itemAsDocument = index && options_.listItemsAsDocuments;
    const int document = itemAsDocument ? static_cast<int>(*index) : options_.document;
    const Path items("items");
    const Path root = (index && !itemAsDocument) ? items.at(*index) : Path();

    dom::object object;
    if (element.get_object().get(object) != simdjson::SUCCESS) {
      addError(document, {}, {}, {}, root.str(),
               "expected a JSON object, got " + std::string(typeName(element.type())));
      return;
    }
    RootFields f = RootFields::scan(object);

    std::string_view kindText = fallbackKind;
    if (f.kind && f.kind->type() != dom::element_type::NULL_VALUE) {
      if (f.kind->get_string().get(kindText) != simdjson::SUCCESS) {
        addError(document, {}, {}, {}, root.field("kind").str(),
                 "expected string, got " + std::string(typeName(f.kind->type())));
        return;
      }
    }
    std::string_view ns, name;
    peekName(f, ns, name);
    if (kindText.empty()) {
      addError(document, {}, ns, name, root.field("kind").str(), "required value");
      return;
    }
    const auto kind = kindFromName(kindText);
    if (!kind) {
      if (kindText == "List" || (f.items && kindText.ends_with("List"))) {
        addError(document, kindText, ns, name, root.str(), "a List inside a List is not supported");
        return;
      }
      ++out_.skipped;  // a kind the data plane does not use
      return;
    }
    if (!isNamespaced(*kind)) {
      ns = {};
    } else if (ns.empty()) {
      ns = "default";
    }

    std::string_view apiVersion;
    if (f.apiVersion && f.apiVersion->type() != dom::element_type::NULL_VALUE &&
        f.apiVersion->get_string().get(apiVersion) != simdjson::SUCCESS) {
      addError(document, kindText, ns, name, root.field("apiVersion").str(),
               "expected string, got " + std::string(typeName(f.apiVersion->type())));
      return;
    }
    if (apiVersion.empty()) {
      if (!apiVersionOptional) {
        addError(document, kindText, ns, name, root.field("apiVersion").str(), "required value");
        return;
      }
    } else {
      std::string_view supported;
      switch (checkApiVersion(*kind, apiVersion, supported)) {
        case ApiVersionCheck::Ok:
          break;
        case ApiVersionCheck::Foreign:
          ++out_.skipped;
          return;
        case ApiVersionCheck::Unsupported:
          addError(document, kindText, ns, name, root.field("apiVersion").str(),
                   "unsupported apiVersion " + quote(apiVersion) + " for " +
                       std::string(kindText) + ": supported: " + std::string(supported));
          return;
      }
    }

    const ItemContext item{f, root, apiVersion, document, kindText};
    switch (*kind) {
      case Kind::Namespace: return decodeAs<Namespace>(decodeNamespace, item);
      case Kind::Service: return decodeAs<Service>(decodeService, item);
      case Kind::EndpointSlice: return decodeAs<EndpointSlice>(decodeEndpointSlice, item);
      case Kind::Ingress: return decodeAs<Ingress>(decodeIngress, item);
      case Kind::IngressClass: return decodeAs<IngressClass>(decodeIngressClass, item);
      case Kind::Secret: return decodeAs<Secret>(decodeSecret, item);
      case Kind::Pod: return decodeAs<Pod>(decodePod, item);
      case Kind::Node: return decodeAs<Node>(decodeNode, item);
    }
  }

 private:
  /// What is known about an object before its kind's decoder runs.
  struct ItemContext {
    const RootFields& fields;
    const Path& root;
    std::string_view apiVersion;
    int document;
    std::string_view kindText;  // as written
  };

  template <class T>
  void decodeAs(void (*decode)(KindContext&, const RootFields&, T&), const ItemContext& item) {
    Reader reader;
    KindContext ctx{reader, item.root, item.apiVersion};
    // Decoded in place in the result; taken out again if it turns out invalid.
    Object& slot = out_.objects.emplace_back(std::in_place_type<T>);
    T& object = std::get<T>(slot);
    decode(ctx, item.fields, object);
    if (reader.ok()) {
      return;
    }
    auto error = [&](std::string field, std::string message) {
      out_.errors.push_back(DecodeError{std::string(options_.source), item.document,
                                        std::string(item.kindText), object.meta.namespace_,
                                        object.meta.name, std::move(field), std::move(message)});
    };
    for (FieldError& e : reader.errors()) {
      error(std::move(e.field), std::move(e.message));
    }
    if (reader.suppressed() > 0) {
      error({}, "and " + std::to_string(reader.suppressed()) + " more errors");
    }
    out_.objects.pop_back();
  }

  static void readListMeta(const RootFields& f, ListMeta& meta) {
    dom::object m;
    if (!f.metadata || f.metadata->get_object().get(m) != simdjson::SUCCESS) {
      return;
    }
    for (auto [key, value] : m) {
      std::string_view text;
      if (value.get_string().get(text) != simdjson::SUCCESS) {
        continue;
      }
      if (key == "resourceVersion") {
        meta.resourceVersion.assign(text);
      } else if (key == "continue") {
        meta.continueToken.assign(text);
      }
    }
  }

 public:
  // metadata.name and metadata.namespace when they are strings, for errors found before the
  // object is decoded.
  static void peekName(const RootFields& f, std::string_view& ns, std::string_view& name) {
    dom::object meta;
    if (!f.metadata || f.metadata->get_object().get(meta) != simdjson::SUCCESS) {
      return;
    }
    for (auto [key, value] : meta) {
      if (value.type() != dom::element_type::STRING) {
        continue;
      }
      if (key == "name") {
        name = value.get_string().value_unsafe();
      } else if (key == "namespace") {
        ns = value.get_string().value_unsafe();
      }
    }
    name = name.substr(0, kDns1123MaxForError);
    ns = ns.substr(0, kDns1123MaxForError);
  }

 private:

  void addError(int document, std::string_view kind, std::string_view ns, std::string_view name,
                std::string field, std::string message) {
    out_.errors.push_back(DecodeError{std::string(options_.source), document, std::string(kind),
                                      std::string(ns), std::string(name), std::move(field),
                                      std::move(message)});
  }

  static constexpr std::size_t kDns1123MaxForError = 253;

  const JsonDocumentOptions& options_;
  DecodeResult& out_;
};

}  // namespace

namespace {

/// A List parsed item by item (see json_split.h): the envelope first, then each item in place.
/// Returns false when the envelope turns out not to be a List, for the caller to parse the
/// text whole; a syntax error is returned in `error`.
bool decodeSplitList(std::string_view text, bool padded, const ListSplit& split,
                     const JsonDocumentOptions& options, DecodeResult& out,
                     std::optional<DecodeError>& error) {
  auto fail = [&](simdjson::error_code code) {
    error = DecodeError{std::string(options.source), options.document, {}, {}, {}, {},
                        std::string("invalid JSON: ") + simdjson::error_message(code)};
    return true;
  };
  ThreadParser& parser = threadParser();
  DocumentDecoder decoder(options, out);

  // The envelope: the text with the items array emptied.
  std::string envelope;
  envelope.reserve(split.arrayOpen + 1 + (text.size() - split.arrayClose) + kJsonPadding);
  envelope.append(text.substr(0, split.arrayOpen + 1));
  envelope.append(text.substr(split.arrayClose));
  dom::element root;
  if (auto code = parser.parse(envelope, /*padded=*/true).get(root); code != simdjson::SUCCESS) {
    return fail(code);
  }
  DocumentDecoder::ListPlan plan;
  std::optional<dom::array> empty;
  switch (decoder.classify(root, plan, empty)) {
    case DocumentDecoder::Shape::Refused:
      return true;
    case DocumentDecoder::Shape::Object:
      return false;
    case DocumentDecoder::Shape::List:
      break;
  }
  out.objects.reserve(out.objects.size() + split.items.size());
  for (std::size_t i = 0; i < split.items.size(); ++i) {
    const auto [begin, end] = split.items[i];
    // In place when the text goes on long enough past the item for simdjson's padding.
    const bool inPlace = padded || end + kJsonPadding <= text.size();
    dom::element item;
    if (auto code = parser.parse(text.substr(begin, end - begin), inPlace).get(item);
        code != simdjson::SUCCESS) {
      return fail(code);
    }
    decoder.decodeItem(item, i, plan.fallbackKind, plan.apiList);
  }
  return true;
}

}  // namespace

std::optional<DecodeError> decodeJsonDocument(std::string_view text, bool padded,
                                              const JsonDocumentOptions& options,
                                              DecodeResult& out) {
  auto fail = [&](std::string message) {
    return DecodeError{std::string(options.source), options.document, {}, {}, {}, {},
                       std::move(message)};
  };
  if (text.size() > kMaxJsonTextBytes) {
    return fail("JSON text of " + std::to_string(text.size()) + " bytes is larger than " +
                std::to_string(kMaxJsonTextBytes));
  }
  // On a syntax error nothing of this text stays in `out`.
  const std::size_t objects = out.objects.size();
  const std::size_t errors = out.errors.size();
  const std::size_t skipped = out.skipped;
  auto rollBack = [&] {
    out.objects.erase(out.objects.begin() + static_cast<std::ptrdiff_t>(objects),
                      out.objects.end());
    out.errors.erase(out.errors.begin() + static_cast<std::ptrdiff_t>(errors), out.errors.end());
    out.skipped = skipped;
  };

  // Lists item by item: memory bounded by the largest item rather than the whole text.
  if (auto split = splitListItems(text); split && !split->items.empty()) {
    std::optional<DecodeError> error;
    const bool done = decodeSplitList(text, padded, *split, options, out, error);
    releaseThreadParserIfHuge();
    if (error) {
      rollBack();
      return error;
    }
    if (done) {
      return std::nullopt;
    }
    rollBack();  // not a List after all: read it whole
  }

  dom::element root;
  const auto code = threadParser().parse(text, padded).get(root);
  if (code != simdjson::SUCCESS) {
    releaseThreadParserIfHuge();
    return fail(std::string("invalid JSON: ") + simdjson::error_message(code));
  }
  DocumentDecoder(options, out).decodeRoot(root);
  releaseThreadParserIfHuge();
  return std::nullopt;
}

namespace {

std::string_view stringField(dom::object o, std::string_view name) {
  std::string_view v;
  for (auto [key, value] : o) {
    if (key == name && value.get_string().get(v) == simdjson::SUCCESS) {
      return v;
    }
  }
  return {};
}

}  // namespace

bool decodeWatchEventDocument(std::string_view text, Kind kind, WatchEvent& event,
                              std::string& error) {
  if (text.size() > kMaxJsonTextBytes) {
    error = "watch event of " + std::to_string(text.size()) + " bytes is too large";
    return false;
  }
  dom::element root;
  if (auto code = threadParser().parse(text, /*padded=*/false).get(root);
      code != simdjson::SUCCESS) {
    error = std::string("invalid JSON: ") + simdjson::error_message(code);
    return false;
  }
  dom::object envelope;
  if (root.get_object().get(envelope) != simdjson::SUCCESS) {
    error = "a watch event must be a JSON object";
    return false;
  }
  std::string_view type;
  std::optional<dom::element> object;
  for (auto [key, value] : envelope) {
    if (key == "type") {
      if (value.get_string().get(type) != simdjson::SUCCESS) {
        type = {};
      }
    } else if (key == "object") {
      object = value;
    }
  }
  dom::object o;
  if (!object || object->get_object().get(o) != simdjson::SUCCESS) {
    error = "watch event without an object";
    return false;
  }
  if (type == "ADDED") {
    event.type = WatchEventType::Added;
  } else if (type == "MODIFIED") {
    event.type = WatchEventType::Modified;
  } else if (type == "DELETED") {
    event.type = WatchEventType::Deleted;
  } else if (type == "BOOKMARK") {
    event.type = WatchEventType::Bookmark;
  } else if (type == "ERROR") {
    event.type = WatchEventType::Error;
    for (auto [key, value] : o) {
      if (key == "code" && value.get_int64().get(event.errorCode) != simdjson::SUCCESS) {
        event.errorCode = 0;
      }
    }
    event.errorReason.assign(stringField(o, "reason"));
    event.errorMessage.assign(stringField(o, "message"));
    return true;
  } else {
    error = "unknown watch event type " + quote(type);
    return false;
  }

  RootFields f = RootFields::scan(o);
  dom::object meta;
  if (f.metadata && f.metadata->get_object().get(meta) == simdjson::SUCCESS) {
    event.resourceVersion.assign(stringField(meta, "resourceVersion"));
  }
  if (event.type == WatchEventType::Bookmark) {
    return true;
  }
  std::string_view ns, name;
  DocumentDecoder::peekName(f, ns, name);
  if (isNamespaced(kind) && ns.empty()) {
    ns = "default";
  }
  event.namespace_.assign(isNamespaced(kind) ? ns : std::string_view{});
  event.name.assign(name);
  const JsonDocumentOptions options{"api", -1, kind, true};
  DocumentDecoder(options, event.result)
      .decodeItem(*object, std::nullopt, kindName(kind), /*apiVersionOptional=*/true);
  releaseThreadParserIfHuge();
  return true;
}

std::string decodeApiStatusMessage(std::string_view text) {
  dom::element root;
  dom::object o;
  if (text.size() > kMaxJsonTextBytes ||
      threadParser().parse(text, /*padded=*/false).get(root) != simdjson::SUCCESS ||
      root.get_object().get(o) != simdjson::SUCCESS) {
    return {};
  }
  return std::string(stringField(o, "message"));
}

std::vector<std::string> decodeApiGroupVersions(std::string_view text) {
  std::vector<std::string> versions;
  dom::element root;
  dom::object o;
  if (threadParser().parse(text, /*padded=*/false).get(root) != simdjson::SUCCESS ||
      root.get_object().get(o) != simdjson::SUCCESS || stringField(o, "kind") != "APIGroup") {
    return versions;
  }
  std::string preferred;
  for (auto [key, value] : o) {
    dom::object p;
    dom::array a;
    if (key == "preferredVersion" && value.get_object().get(p) == simdjson::SUCCESS) {
      preferred.assign(stringField(p, "version"));
    } else if (key == "versions" && value.get_array().get(a) == simdjson::SUCCESS) {
      for (dom::element v : a) {
        dom::object vo;
        if (v.get_object().get(vo) == simdjson::SUCCESS) {
          if (auto name = stringField(vo, "version"); !name.empty()) {
            versions.emplace_back(name);
          }
        }
      }
    }
  }
  if (auto it = std::find(versions.begin(), versions.end(), preferred);
      it != versions.end() && it != versions.begin()) {
    std::rotate(versions.begin(), it, it + 1);
  }
  return versions;
}

}  // namespace kdp::k8s::detail
