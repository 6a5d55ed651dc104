#include "k8s/api_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <system_error>

#include "common/fd.h"
#include "k8s/detail/validate.h"

namespace kdp::k8s {

namespace {

constexpr std::size_t kMaxConfigFileBytes = std::size_t{16} << 20;

[[noreturn]] void fail(std::string message) {
  throw ApiConfigError(std::move(message));
}

std::string dirOf(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string resolve(const std::string& base, const std::string& file) {
  if (file.empty() || file.front() == '/') {
    return file;
  }
  return dirOf(base) + "/" + file;
}

/// A scalar field of a map node as a string; "" when absent or null.
std::string scalar(const YAML::Node& map, const char* key, const std::string& where) {
  const YAML::Node v = map[key];
  if (!v || v.IsNull()) {
    return {};
  }
  if (!v.IsScalar()) {
    fail(where + "." + key + ": expected a string");
  }
  return v.Scalar();
}

bool boolean(const YAML::Node& map, const char* key, const std::string& where) {
  const std::string v = scalar(map, key, where);
  if (v.empty() || v == "false") {
    return false;
  }
  if (v == "true") {
    return true;
  }
  fail(where + "." + key + ": expected true or false, got \"" + v + "\"");
}

/// The entry `name` of a list of {name, <field>: {...}} (kubeconfig's clusters, users,
/// contexts), its <field> map.
YAML::Node namedEntry(const YAML::Node& root, const char* list, const char* field,
                      const std::string& name, const std::string& where) {
  const YAML::Node entries = root[list];
  if (entries && entries.IsSequence()) {
    for (const auto& e : entries) {
      if (e.IsMap() && e["name"] && e["name"].IsScalar() && e["name"].Scalar() == name) {
        const YAML::Node value = e[field];
        if (value && !value.IsNull() && !value.IsMap()) {
          fail(where + ": " + list + "[" + name + "]." + field + ": expected a map");
        }
        return value ? value : YAML::Node(YAML::NodeType::Map);
      }
    }
  }
  fail(where + ": " + list + ": no entry named \"" + name + "\"");
}

std::string base64Field(const YAML::Node& map, const char* key, const std::string& where) {
  const std::string text = scalar(map, key, where);
  if (text.empty()) {
    return {};
  }
  auto bytes = detail::decodeBase64(text);
  if (!bytes) {
    fail(where + "." + key + ": not valid base64");
  }
  return std::move(*bytes);
}

}  // namespace

std::string ApiConfig::hostPort() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

void parseServerUrl(std::string_view url, std::string_view where, ApiConfig& config) {
  auto bad = [&](std::string_view why) {
    fail(std::string(where) + ": server \"" + std::string(url) + "\": " + std::string(why));
  };
  constexpr std::string_view kHttps = "https://";
  if (!url.starts_with(kHttps)) {
    bad(url.starts_with("http://") ? "plain http is not supported (kube-apiserver serves https)"
                                   : "expected https://HOST[:PORT]");
  }
  std::string_view rest = url.substr(kHttps.size());
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  while (path.ends_with('/')) {
    path.remove_suffix(1);
  }
  if (path.find_first_of("?#") != std::string_view::npos) {
    bad("a query or fragment is not allowed");
  }
  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      bad("unclosed '['");
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        bad("expected ':' after ']'");
      }
      port = after.substr(1);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty() || host.find('@') != std::string_view::npos) {
    bad("no host");
  }
  config.port = 443;
  if (!port.empty() || authority.ends_with(':')) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc{} || p != port.data() + port.size() || value == 0 ||
        value > 65535) {
      bad("invalid port");
    }
    config.port = static_cast<std::uint16_t>(value);
  }
  config.server = std::string(url);
  config.host = std::string(host);
  config.basePath = std::string(path);
}

ApiConfig parseKubeconfig(std::string_view yaml, const std::string& path, const FileReader& read) {
  const std::string where = "--kubeconfig " + path;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    fail(where + ": invalid YAML: " + e.what());
  }
  if (!root.IsMap()) {
    fail(where + ": not a kubeconfig (expected a map)");
  }
  try {
    const std::string contextName = scalar(root, "current-context", where);
    if (contextName.empty()) {
      fail(where + ": current-context is not set");
    }
    const YAML::Node context = namedEntry(root, "contexts", "context", contextName, where);
    const std::string ctxWhere = where + ": contexts[" + contextName + "].context";
    const std::string clusterName = scalar(context, "cluster", ctxWhere);
    if (clusterName.empty()) {
      fail(ctxWhere + ".cluster: required");
    }
    const YAML::Node cluster = namedEntry(root, "clusters", "cluster", clusterName, where);
    const std::string clusterWhere = where + ": clusters[" + clusterName + "].cluster";

    ApiConfig config;
    config.origin = where;
    const std::string server = scalar(cluster, "server", clusterWhere);
    if (server.empty()) {
      fail(clusterWhere + ".server: required");
    }
    parseServerUrl(server, clusterWhere, config);
    config.insecureSkipTlsVerify = boolean(cluster, "insecure-skip-tls-verify", clusterWhere);
    config.tlsServerName = scalar(cluster, "tls-server-name", clusterWhere);
    config.caPem = base64Field(cluster, "certificate-authority-data", clusterWhere);
    if (!config.caPem.empty()) {
      config.caOrigin = "clusters[" + clusterName + "].cluster.certificate-authority-data";
    } else if (auto file = scalar(cluster, "certificate-authority", clusterWhere); !file.empty()) {
      const std::string resolved = resolve(path, file);
      config.caPem = read(resolved, clusterWhere + ".certificate-authority");
      config.caOrigin = "certificate-authority " + resolved;
    }
    if (config.insecureSkipTlsVerify && !config.caPem.empty()) {
      // kubectl refuses the same combination.
      fail(clusterWhere + ": insecure-skip-tls-verify cannot be combined with a CA");
    }

    const std::string userName = scalar(context, "user", ctxWhere);
    if (userName.empty()) {
      return config;  // no credentials: anonymous
    }
    const YAML::Node user = namedEntry(root, "users", "user", userName, where);
    const std::string userWhere = where + ": users[" + userName + "].user";
    for (const char* unsupported : {"exec", "auth-provider", "username", "password"}) {
      if (user[unsupported] && !user[unsupported].IsNull()) {
        fail(userWhere + "." + unsupported +
             ": not supported (use a token, tokenFile or a client certificate)");
      }
    }
    config.token = scalar(user, "token", userWhere);
    if (auto file = scalar(user, "tokenFile", userWhere); !file.empty()) {
      config.tokenFile = resolve(path, file);
      (void)read(config.tokenFile, userWhere + ".tokenFile");  // readable now, re-read later
    }
    config.clientCertPem = base64Field(user, "client-certificate-data", userWhere);
    if (config.clientCertPem.empty()) {
      if (auto file = scalar(user, "client-certificate", userWhere); !file.empty()) {
        config.clientCertPem = read(resolve(path, file), userWhere + ".client-certificate");
      }
    }
    config.clientKeyPem = base64Field(user, "client-key-data", userWhere);
    if (config.clientKeyPem.empty()) {
      if (auto file = scalar(user, "client-key", userWhere); !file.empty()) {
        config.clientKeyPem = read(resolve(path, file), userWhere + ".client-key");
      }
    }
    if (config.clientCertPem.empty() != config.clientKeyPem.empty()) {
      fail(userWhere + ": a client certificate needs its key and the other way round");
    }
    return config;
  } catch (const YAML::Exception& e) {
    fail(where + ": " + e.what());
  }
}

bool inCluster(const EnvReader& env) {
  auto host = env("KUBERNETES_SERVICE_HOST");
  return host && !host->empty();
}

ApiConfig inClusterConfig(const EnvReader& env, const FileReader& read,
                          std::string_view serviceAccountDir) {
  const std::string where = "in-cluster config";
  auto host = env("KUBERNETES_SERVICE_HOST");
  auto port = env("KUBERNETES_SERVICE_PORT");
  if (!host || host->empty() || !port || port->empty()) {
    fail("no source: give --manifests DIR or --kubeconfig FILE (KUBERNETES_SERVICE_HOST and "
         "KUBERNETES_SERVICE_PORT are not set, so this is not a pod)");
  }
  const bool v6 = host->find(':') != std::string::npos;
  ApiConfig config;
  config.origin = where;
  parseServerUrl("https://" + (v6 ? "[" + *host + "]" : *host) + ":" + *port,
                 where + " (KUBERNETES_SERVICE_HOST/PORT)", config);
  const std::string dir(serviceAccountDir);
  config.tokenFile = dir + "/token";
  (void)read(config.tokenFile, where + ": service account token");
  config.caPem = read(dir + "/ca.crt", where + ": service account CA");
  config.caOrigin = dir + "/ca.crt";
  return config;
}

std::string readWholeFile(const std::string& path, std::string_view what) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) {
    fail(std::string(what) + ": " + path + ": " + std::generic_category().message(errno));
  }
  std::string out;
  char buf[16384];
  while (true) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      fail(std::string(what) + ": " + path + ": " + std::generic_category().message(errno));
    }
    if (n == 0) {
      return out;
    }
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > kMaxConfigFileBytes) {
      fail(std::string(what) + ": " + path + ": larger than " +
           std::to_string(kMaxConfigFileBytes) + " bytes");
    }
  }
}

std::optional<std::string> processEnv(const char* name) {
  if (const char* v = std::getenv(name)) {
    return std::string(v);
  }
  return std::nullopt;
}

ApiConfig loadKubeconfig(const std::string& path) {
  return parseKubeconfig(readWholeFile(path, "--kubeconfig"), path, readWholeFile);
}

}  // namespace kdp::k8s
