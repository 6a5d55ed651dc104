#include "k8s/api_config.h"

#include <catch2/catch.hpp>

#include <map>

using namespace kdp::k8s;

namespace {

// base64 of "CA-PEM", "CERT", "KEY"
constexpr const char* kCaB64 = "Q0EtUEVN";
constexpr const char* kCertB64 = "Q0VSVA==";
constexpr const char* kKeyB64 = "S0VZ";

struct FakeFiles {
  std::map<std::string, std::string> files;
  std::vector<std::string> reads;

  FileReader reader() {
    return [this](const std::string& path, std::string_view what) {
      reads.push_back(path);
      auto it = files.find(path);
      if (it == files.end()) {
        throw ApiConfigError(std::string(what) + ": " + path + ": No such file or directory");
      }
      return it->second;
    };
  }
};

std::string kubeconfig(const std::string& cluster, const std::string& user) {
  return "apiVersion: v1\nkind: Config\ncurrent-context: ctx\n"
         "contexts:\n- name: other\n  context: {cluster: nope, user: nope}\n"
         "- name: ctx\n  context: {cluster: c1, user: u1, namespace: ns}\n"
         "clusters:\n- name: c1\n  cluster:\n" +
         cluster + "users:\n- name: u1\n  user:\n" + user;
}

std::string errorOf(const std::string& text, FakeFiles& files) {
  try {
    (void)parseKubeconfig(text, "/etc/kube/config", files.reader());
  } catch (const ApiConfigError& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("kubeconfig: current context, embedded CA, client certificate and token", "[api][config]") {
  FakeFiles files;
  const auto c = parseKubeconfig(
      kubeconfig(std::string("    server: https://10.0.0.1:6443/\n    certificate-authority-data: ") +
                     kCaB64 + "\n",
                 std::string("    token: abc\n    client-certificate-data: ") + kCertB64 +
                     "\n    client-key-data: " + kKeyB64 + "\n"),
      "/etc/kube/config", files.reader());
  CHECK(c.server == "https://10.0.0.1:6443/");
  CHECK(c.host == "10.0.0.1");
  CHECK(c.port == 6443);
  CHECK(c.basePath.empty());
  CHECK(c.caPem == "CA-PEM");
  CHECK(c.clientCertPem == "CERT");
  CHECK(c.clientKeyPem == "KEY");
  CHECK(c.token == "abc");
  CHECK(c.tokenFile.empty());
  CHECK_FALSE(c.insecureSkipTlsVerify);
  CHECK(c.origin == "--kubeconfig /etc/kube/config");
  CHECK(c.hostPort() == "10.0.0.1:6443");
}

TEST_CASE("kubeconfig: files relative to the kubeconfig, token file, IPv6 server", "[api][config]") {
  FakeFiles files;
  files.files = {{"/etc/kube/ca.crt", "CA"},
                 {"/etc/kube/certs/c.crt", "C"},
                 {"/abs/c.key", "K"},
                 {"/etc/kube/token", "t0\n"}};
  const auto c = parseKubeconfig(
      kubeconfig("    server: https://[fd00::1]\n    certificate-authority: ca.crt\n",
                 "    tokenFile: token\n    client-certificate: certs/c.crt\n"
                 "    client-key: /abs/c.key\n"),
      "/etc/kube/config", files.reader());
  CHECK(c.host == "fd00::1");
  CHECK(c.port == 443);
  CHECK(c.hostPort() == "[fd00::1]:443");
  CHECK(c.caPem == "CA");
  CHECK(c.caOrigin == "certificate-authority /etc/kube/ca.crt");
  CHECK(c.clientCertPem == "C");
  CHECK(c.clientKeyPem == "K");
  CHECK(c.tokenFile == "/etc/kube/token");  // re-read on each request, not kept here
}

TEST_CASE("kubeconfig: insecure-skip-tls-verify and a server path", "[api][config]") {
  FakeFiles files;
  const auto c = parseKubeconfig(
      kubeconfig("    server: https://example.com:8443/k8s/clusters/c-1/\n"
                 "    insecure-skip-tls-verify: true\n",
                 "    token: x\n"),
      "kc", files.reader());
  CHECK(c.insecureSkipTlsVerify);
  CHECK(c.host == "example.com");
  CHECK(c.basePath == "/k8s/clusters/c-1");
}

TEST_CASE("kubeconfig: one-line errors naming the file and field", "[api][config]") {
  FakeFiles files;
  const std::string okCluster = "    server: https://h:1\n";
  CHECK(errorOf("{", files).starts_with("--kubeconfig /etc/kube/config: invalid YAML"));
  CHECK(errorOf("[]", files) == "--kubeconfig /etc/kube/config: not a kubeconfig (expected a map)");
  CHECK(errorOf("apiVersion: v1\n", files) ==
        "--kubeconfig /etc/kube/config: current-context is not set");
  CHECK(errorOf("current-context: x\ncontexts: []\n", files) ==
        "--kubeconfig /etc/kube/config: contexts: no entry named \"x\"");
  CHECK(errorOf(kubeconfig("    server: http://h:8080\n", "    token: t\n"), files) ==
        "--kubeconfig /etc/kube/config: clusters[c1].cluster: server \"http://h:8080\": plain "
        "http is not supported (kube-apiserver serves https)");
  CHECK(errorOf(kubeconfig("    server: https://h:99999\n", "    token: t\n"), files)
            .ends_with("invalid port"));
  CHECK(errorOf(kubeconfig("    certificate-authority-data: x\n", "    token: t\n"), files)
            .ends_with("server: required"));
  CHECK(errorOf(kubeconfig(okCluster + "    certificate-authority-data: '@@'\n", "    token: t\n"),
                files) ==
        "--kubeconfig /etc/kube/config: clusters[c1].cluster.certificate-authority-data: not valid "
        "base64");
  CHECK(errorOf(kubeconfig(okCluster + "    certificate-authority: missing.crt\n", ""), files) ==
        "--kubeconfig /etc/kube/config: clusters[c1].cluster.certificate-authority: "
        "/etc/kube/missing.crt: No such file or directory");
  CHECK(errorOf(kubeconfig(okCluster, "    exec: {command: aws}\n"), files) ==
        "--kubeconfig /etc/kube/config: users[u1].user.exec: not supported (use a token, "
        "tokenFile or a client certificate)");
  CHECK(errorOf(kubeconfig(okCluster, std::string("    client-certificate-data: ") + kCertB64 + "\n"),
                files)
            .ends_with("a client certificate needs its key and the other way round"));
  CHECK(errorOf(kubeconfig(okCluster + "    insecure-skip-tls-verify: yes-please\n", ""), files)
            .ends_with("insecure-skip-tls-verify: expected true or false, got \"yes-please\""));
}

TEST_CASE("in-cluster config: service host and port, token file and CA", "[api][config]") {
  FakeFiles files;
  files.files = {{"/sa/token", "tok"}, {"/sa/ca.crt", "CA"}};
  std::map<std::string, std::string> env = {{"KUBERNETES_SERVICE_HOST", "fd00:10:96::1"},
                                            {"KUBERNETES_SERVICE_PORT", "443"}};
  EnvReader getenv = [&](const char* name) -> std::optional<std::string> {
    auto it = env.find(name);
    return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  const auto c = inClusterConfig(getenv, files.reader(), "/sa");
  CHECK(inCluster(getenv));
  CHECK(c.host == "fd00:10:96::1");
  CHECK(c.port == 443);
  CHECK(c.tokenFile == "/sa/token");
  CHECK(c.token.empty());
  CHECK(c.caPem == "CA");
  CHECK(c.origin == "in-cluster config");

  env.clear();
  CHECK_FALSE(inCluster(getenv));
  CHECK_THROWS_WITH(inClusterConfig(getenv, files.reader(), "/sa"),
                    Catch::StartsWith("no source: give --manifests DIR or --kubeconfig FILE"));
  env = {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}};
  CHECK_THROWS_WITH(inClusterConfig(getenv, files.reader(), "/nowhere"),
                    "in-cluster config: service account token: /nowhere/token: No such file or "
                    "directory");
}
