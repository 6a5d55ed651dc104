// Decoders for metadata and the small core/v1 kinds: Namespace, Secret, Pod, Node.

#include <cctype>

#include "k8s/detail/decode_kinds.h"
#include "k8s/detail/validate.h"

namespace kdp::k8s::detail {

namespace {

// Names longer than this are kept cut in the decoded (and then dropped) object, so that the
// error can still say which object it was without carrying megabytes around.
constexpr std::size_t kMaxNameInError = kDns1123SubdomainMaxLength;

std::string_view checkName(Kind kind, std::string_view name) {
  switch (kind) {
    case Kind::Service:
      return checkDns1035Label(name);
    case Kind::Namespace:
      return checkDns1123Label(name);
    default:
      return checkDns1123Subdomain(name);
  }
}

void decodeLabels(Reader& r, dom::element e, const Path& p, CompactStringMap& out) {
  StringPairs pairs;
  r.stringMap(e, p, [&](std::string_view k, std::string_view v, const Path& kp) {
    if (auto msg = checkQualifiedName(k); !msg.empty()) {
      r.invalid(kp, k, msg);
    } else if (auto vmsg = checkLabelValue(v); !vmsg.empty()) {
      r.invalid(kp, v, vmsg);
    } else {
      pairs.emplace_back(k, v);
    }
  });
  assignPairs(out, pairs);
}

void decodeAnnotations(Reader& r, dom::element e, const Path& p, CompactStringMap& out) {
  StringPairs pairs;
  std::size_t total = 0;
  bool tooLong = false;
  r.stringMap(e, p, [&](std::string_view k, std::string_view v, const Path& kp) {
    if (tooLong) {
      return;
    }
    total += k.size() + v.size();
    if (total > kTotalAnnotationSizeLimit) {
      tooLong = true;
      r.fail(p, "too long: must have at most " + std::to_string(kTotalAnnotationSizeLimit) +
                    " bytes");
      return;
    }
    // The API checks annotation keys case-insensitively.
    std::string_view msg;
    if (std::any_of(k.begin(), k.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
      std::string lower(k);
      for (char& c : lower) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      msg = checkQualifiedName(lower);
    } else {
      msg = checkQualifiedName(k);
    }
    if (!msg.empty()) {
      r.invalid(kp, k, msg);
      return;
    }
    pairs.emplace_back(k, v);
  });
  assignPairs(out, pairs);
}

}  // namespace

bool isValidPortNumber(std::int64_t port) {
  return port >= 1 && port <= 65535;
}

RootFields RootFields::scan(dom::object object) {
  RootFields f;
  for (auto [key, value] : object) {
    if (key == "kind") {
      f.kind = value;
    } else if (key == "apiVersion") {
      f.apiVersion = value;
    } else if (key == "metadata") {
      f.metadata = value;
    } else if (key == "spec") {
      f.spec = value;
    } else if (key == "status") {
      f.status = value;
    } else if (key == "data") {
      f.data = value;
    } else if (key == "stringData") {
      f.stringData = value;
    } else if (key == "type") {
      f.type = value;
    } else if (key == "addressType") {
      f.addressType = value;
    } else if (key == "endpoints") {
      f.endpoints = value;
    } else if (key == "ports") {
      f.ports = value;
    } else if (key == "items") {
      f.items = value;
    }
  }
  return f;
}

void decodeObjectMeta(KindContext& c, const RootFields& f, Kind kind, ObjectMeta& m) {
  Reader& r = c.reader;
  const Path mp = c.root.field("metadata");
  dom::object o;
  bool nameSeen = false;
  if (f.metadata && r.object(*f.metadata, mp, o) == Read::Ok) {
    for (auto [key, value] : o) {
      if (key == "name") {
        const Path p = mp.field("name");
        std::string_view name;
        if (r.string(value, p, name, SIZE_MAX) != Read::Ok) {
          nameSeen = value.type() != dom::element_type::NULL_VALUE;
          continue;
        }
        nameSeen = !name.empty();
        m.name.assign(name.substr(0, kMaxNameInError));
        if (!name.empty()) {
          if (auto msg = checkName(kind, name); !msg.empty()) {
            r.invalid(p, name, msg);
          }
        }
      } else if (key == "namespace") {
        if (!isNamespaced(kind)) {
          continue;  // the API ignores it on cluster-scoped kinds
        }
        const Path p = mp.field("namespace");
        std::string_view ns;
        if (r.string(value, p, ns, SIZE_MAX) == Read::Ok && !ns.empty()) {
          m.namespace_.assign(ns.substr(0, kMaxNameInError));
          if (auto msg = checkDns1123Label(ns); !msg.empty()) {
            r.invalid(p, ns, msg);
          }
        }
      } else if (key == "uid") {
        r.string(value, mp.field("uid"), m.uid);
      } else if (key == "resourceVersion") {
        r.string(value, mp.field("resourceVersion"), m.resourceVersion);
      } else if (key == "creationTimestamp") {
        r.string(value, mp.field("creationTimestamp"), m.creationTimestamp);
      } else if (key == "deletionTimestamp") {
        std::string_view ts;
        if (r.string(value, mp.field("deletionTimestamp"), ts) == Read::Ok) {
          m.deleting = true;
        }
      } else if (key == "labels") {
        decodeLabels(r, value, mp.field("labels"), m.labels);
      } else if (key == "annotations") {
        decodeAnnotations(r, value, mp.field("annotations"), m.annotations);
      }
    }
  }
  if (!nameSeen) {
    r.required(mp.field("name"));
  }
  if (isNamespaced(kind) && m.namespace_.empty()) {
    m.namespace_ = "default";
  }
}

void decodeNamespace(KindContext& c, const RootFields& f, Namespace& out) {
  decodeObjectMeta(c, f, Kind::Namespace, out.meta);
}

// ---------------------------------------------------------------------------------------------
// Secret

void decodeSecret(KindContext& c, const RootFields& f, Secret& out) {
  Reader& r = c.reader;
  decodeObjectMeta(c, f, Kind::Secret, out.meta);
  if (f.type) {
    std::string_view type;
    if (r.string(*f.type, c.root.field("type"), type) == Read::Ok && !type.empty()) {
      out.type.assign(type);
    }
  }
  // Secret values are never quoted in errors: they are secrets.
  auto checkKey = [&](std::string_view k, const Path& kp) {
    if (auto msg = checkConfigMapKey(k); !msg.empty()) {
      r.invalid(kp, k, msg);
      return false;
    }
    return true;
  };
  if (f.data) {
    const Path p = c.root.field("data");
    dom::object o;
    if (r.object(*f.data, p, o) == Read::Ok) {
      for (auto [key, value] : o) {
        const Path kp = p.key(key);
        if (!checkKey(key, kp)) {
          continue;
        }
        std::string_view encoded;
        Read got = r.string(value, kp, encoded, SIZE_MAX);
        if (got == Read::Bad) {
          continue;
        }
        auto decoded = decodeBase64(encoded);
        if (!decoded) {
          r.fail(kp, "invalid base64 data: must be standard base64 with padding");
          continue;
        }
        const std::size_t before = out.data.size();
        auto it = out.data.emplace_hint(out.data.end(), std::string(key), std::move(*decoded));
        if (out.data.size() == before) {
          it->second = std::move(*decoded);
        }
      }
    }
  }
  if (f.stringData) {
    r.stringMap(*f.stringData, c.root.field("stringData"),
                [&](std::string_view k, std::string_view v, const Path& kp) {
                  if (checkKey(k, kp)) {
                    assignString(out.data, k, v);
                  }
                });
  }
  std::size_t total = 0;
  for (const auto& [k, v] : out.data) {
    total += v.size();
  }
  if (total > kMaxSecretSize) {
    r.fail(c.root.field("data"),
           "too long: must have at most " + std::to_string(kMaxSecretSize) + " bytes");
  }
  if (out.type == kTlsSecretType) {
    for (std::string_view k : {std::string_view("tls.crt"), std::string_view("tls.key")}) {
      if (!out.data.contains(k)) {
        r.required(c.root.field("data").key(k));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Pod

namespace {

// Container ports of all containers go to one list; `names` collects (name, index in `out`) and
// `where` the (container, port) position of each entry of `out`, for duplicate reports.
struct PortNames {
  std::vector<std::pair<std::string_view, std::size_t>> names;
  std::vector<std::pair<std::size_t, std::size_t>> where;
};

void decodeContainerPorts(Reader& r, dom::element e, const Path& p, std::size_t container,
                          std::vector<ContainerPort>& out, PortNames& names) {
  dom::array a;
  if (r.array(e, p, a) != Read::Ok) {
    return;
  }
  std::size_t i = 0;
  for (dom::element pe : a) {
    const Path ip = p.at(i++);
    dom::object o;
    if (r.object(pe, ip, o) != Read::Ok) {
      continue;
    }
    ContainerPort& port = out.emplace_back();
    names.where.emplace_back(container, i - 1);
    bool havePort = false;
    for (auto [key, value] : o) {
      if (key == "name") {
        const Path np = ip.field("name");
        std::string_view name;
        if (r.string(value, np, name, SIZE_MAX) == Read::Ok && !name.empty()) {
          if (auto msg = checkIanaSvcName(name); !msg.empty()) {
            r.invalid(np, name, msg);
          } else {
            port.name.assign(name);
            names.names.emplace_back(name, out.size() - 1);
          }
        }
      } else if (key == "containerPort") {
        const Path cp = ip.field("containerPort");
        Read got = r.int32(value, cp, port.containerPort);
        havePort = got != Read::Absent;
        if (got == Read::Ok && !isValidPortNumber(port.containerPort)) {
          r.invalid(cp, port.containerPort, kPortRangeMessage);
        }
      } else if (key == "protocol") {
        r.protocol(value, ip.field("protocol"), port.protocol);
      } else if (key == "hostPort") {
        const Path hp = ip.field("hostPort");
        std::int32_t hostPort = 0;
        if (r.int32(value, hp, hostPort) == Read::Ok && hostPort != 0 &&
            !isValidPortNumber(hostPort)) {
          r.invalid(hp, hostPort, kPortRangeMessage);
        }
      }
    }
    if (!havePort) {
      r.required(ip.field("containerPort"));
    }
  }
}

}  // namespace

void decodePod(KindContext& c, const RootFields& f, Pod& out) {
  Reader& r = c.reader;
  decodeObjectMeta(c, f, Kind::Pod, out.meta);

  const Path sp = c.root.field("spec");
  dom::object spec;
  std::size_t containers = 0;
  if (f.spec && r.object(*f.spec, sp, spec) == Read::Ok) {
    PortNames portNames;
    std::vector<std::pair<std::string_view, std::size_t>> containerNames;
    for (auto [key, value] : spec) {
      if (key == "nodeName") {
        const Path p = sp.field("nodeName");
        std::string_view s;
        if (r.string(value, p, s, SIZE_MAX) == Read::Ok && !s.empty()) {
          if (auto msg = checkDns1123Subdomain(s); !msg.empty()) {
            r.invalid(p, s, msg);
          } else {
            out.nodeName.assign(s);
          }
        }
      } else if (key == "hostname" || key == "subdomain") {
        const Path p = sp.field(key);
        std::string_view s;
        if (r.string(value, p, s, SIZE_MAX) == Read::Ok && !s.empty()) {
          if (auto msg = checkDns1123Label(s); !msg.empty()) {
            r.invalid(p, s, msg);
          } else {
            (key == "hostname" ? out.hostname : out.subdomain).assign(s);
          }
        }
      } else if (key == "hostNetwork") {
        r.boolean(value, sp.field("hostNetwork"), out.hostNetwork);
      } else if (key == "containers") {
        const Path cp = sp.field("containers");
        dom::array a;
        if (r.array(value, cp, a) != Read::Ok) {
          continue;
        }
        for (dom::element ce : a) {
          const Path ip = cp.at(containers++);
          dom::object o;
          if (r.object(ce, ip, o) != Read::Ok) {
            continue;
          }
          bool haveName = false;
          bool haveImage = false;
          for (auto [ck, cv] : o) {
            if (ck == "name") {
              const Path np = ip.field("name");
              std::string_view name;
              if (r.string(cv, np, name, SIZE_MAX) == Read::Ok && !name.empty()) {
                haveName = true;
                if (auto msg = checkDns1123Label(name); !msg.empty()) {
                  r.invalid(np, name, msg);
                } else {
                  containerNames.emplace_back(name, containers - 1);
                }
              } else if (cv.type() != dom::element_type::NULL_VALUE) {
                haveName = true;  // wrong type: already reported
              }
            } else if (ck == "image") {
              std::string_view image;
              Read got = r.string(cv, ip.field("image"), image, SIZE_MAX);
              haveImage = got == Read::Bad || (got == Read::Ok && !image.empty());
            } else if (ck == "ports") {
              decodeContainerPorts(r, cv, ip.field("ports"), containers - 1, out.ports, portNames);
            }
          }
          if (!haveName) {
            r.required(ip.field("name"));
          }
          if (!haveImage) {
            r.required(ip.field("image"));
          }
        }
      }
    }
    forEachDuplicate(containerNames, [&](std::size_t i) {
      r.fail(sp.field("containers").at(i).field("name"), "duplicate value");
    });
    forEachDuplicate(portNames.names, [&](std::size_t i) {
      auto [container, port] = portNames.where[i];
      r.invalid(sp.field("containers").at(container).field("ports").at(port).field("name"),
                out.ports[i].name, "duplicate port name in the pod");
    });
  }
  if (containers == 0) {
    r.required(sp.field("containers"));
  }

  const Path stp = c.root.field("status");
  dom::object status;
  if (f.status && r.object(*f.status, stp, status) == Read::Ok) {
    std::optional<IpAddr> podIP;
    bool havePodIPs = false;
    for (auto [key, value] : status) {
      if (key == "phase") {
        r.string(value, stp.field("phase"), out.phase);
      } else if (key == "podIP") {
        IpAddr ip;
        if (value.type() == dom::element_type::STRING &&
            value.get_string().value_unsafe().empty()) {
          continue;  // "" is the same as absent
        }
        if (r.ip(value, stp.field("podIP"), ip) == Read::Ok) {
          podIP = ip;
        }
      } else if (key == "podIPs") {
        const Path p = stp.field("podIPs");
        dom::array a;
        if (r.array(value, p, a) != Read::Ok) {
          continue;
        }
        std::size_t i = 0;
        for (dom::element ie : a) {
          const Path ipp = p.at(i++);
          dom::object o;
          if (r.object(ie, ipp, o) != Read::Ok) {
            continue;
          }
          for (auto [k, v] : o) {
            IpAddr ip;
            if (k == "ip" && r.ip(v, ipp.field("ip"), ip) == Read::Ok) {
              out.podIPs.push_back(ip);
              havePodIPs = true;
            }
          }
        }
      } else if (key == "conditions") {
        const Path p = stp.field("conditions");
        dom::array a;
        if (r.array(value, p, a) != Read::Ok) {
          continue;
        }
        std::size_t i = 0;
        for (dom::element ce : a) {
          const Path cp = p.at(i++);
          dom::object o;
          if (r.object(ce, cp, o) != Read::Ok) {
            continue;
          }
          std::string_view type, st;
          for (auto [k, v] : o) {
            if (k == "type") {
              r.string(v, cp.field("type"), type);
            } else if (k == "status") {
              r.string(v, cp.field("status"), st);
            }
          }
          if (type == "Ready") {
            if (st == "True") {
              out.ready = true;
            } else if (st == "False") {
              out.ready = false;
            }
          }
        }
      }
    }
    if (!havePodIPs && podIP) {
      out.podIPs.push_back(*podIP);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Node

void decodeNode(KindContext& c, const RootFields& f, Node& out) {
  Reader& r = c.reader;
  decodeObjectMeta(c, f, Kind::Node, out.meta);
  const Path stp = c.root.field("status");
  dom::object status;
  if (!f.status || r.object(*f.status, stp, status) != Read::Ok) {
    return;
  }
  for (auto [key, value] : status) {
    if (key != "addresses") {
      continue;
    }
    const Path p = stp.field("addresses");
    dom::array a;
    if (r.array(value, p, a) != Read::Ok) {
      continue;
    }
    out.addresses.reserve(a.size());
    std::size_t i = 0;
    for (dom::element ae : a) {
      const Path ap = p.at(i++);
      dom::object o;
      if (r.object(ae, ap, o) != Read::Ok) {
        continue;
      }
      NodeAddress& addr = out.addresses.emplace_back();
      for (auto [k, v] : o) {
        if (k == "type") {
          r.string(v, ap.field("type"), addr.type);
        } else if (k == "address") {
          r.string(v, ap.field("address"), addr.address);
        }
      }
    }
  }
}

}  // namespace kdp::k8s::detail
