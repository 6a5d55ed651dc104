#include "tls/certificate.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/ascii.h"
#include "common/c_handle.h"
#include "k8s/objects.h"

namespace kdp::tls {

namespace {

void freeX509Stack(STACK_OF(X509) * s) {
  sk_X509_pop_free(s, X509_free);
}
void freeGeneralNames(GENERAL_NAMES* n) {
  GENERAL_NAMES_free(n);
}

using Bio = CHandle<BIO, &BIO_free_all>;
using X509Ptr = CHandle<X509, &X509_free>;
using PkeyPtr = CHandle<EVP_PKEY, &EVP_PKEY_free>;
using X509Stack = CHandle<STACK_OF(X509), &freeX509Stack>;
using GeneralNames = CHandle<GENERAL_NAMES, &freeGeneralNames>;

// The last OpenSSL error as text, and the queue cleared (errors are per thread).
std::string sslError(std::string_view what) {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  std::string out(what);
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out += ": ";
    out += buf;
  }
  return out;
}

Bio memBio(std::string_view text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::vector<std::string> namesOf(X509* x) {
  std::vector<std::string> out;
  GeneralNames sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr)));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans.get()); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans.get(), i);
      if (n->type == GEN_DNS) {
        const ASN1_IA5STRING* s = n->d.dNSName;
        out.push_back(asciiLower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                        static_cast<std::size_t>(ASN1_STRING_length(s)))));
      }
    }
  }
  if (out.empty()) {
    char cn[256];
    const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                                            sizeof(cn));
    if (n > 0) {
      out.push_back(asciiLower(std::string(cn, static_cast<std::size_t>(n))));
    }
  }
  return out;
}

std::string timeText(const ASN1_TIME* t) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || ASN1_TIME_print(bio.get(), t) != 1) {
    return {};
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace

struct Certificate::Handles {
  X509Ptr leaf;
  PkeyPtr key;
  X509Stack chain;
};

Certificate::Certificate(std::unique_ptr<Handles> handles) : h_(std::move(handles)) {
  names_ = namesOf(h_->leaf.get());
  const int id = EVP_PKEY_get_base_id(h_->key.get());
  keyType_ = id == EVP_PKEY_EC ? "EC" : id == EVP_PKEY_RSA ? "RSA" : "other";
  notAfter_ = timeText(X509_get0_notAfter(h_->leaf.get()));
  if (std::tm tm{}; ASN1_TIME_to_tm(X509_get0_notAfter(h_->leaf.get()), &tm) == 1) {
    notAfterUnix_ = static_cast<std::int64_t>(::timegm(&tm));
  }
}

Certificate::~Certificate() = default;

x509_st* Certificate::leaf() const {
  return h_->leaf.get();
}
evp_pkey_st* Certificate::key() const {
  return h_->key.get();
}
stack_st_X509* Certificate::chain() const {
  return h_->chain.get();
}

Result<CertificatePtr> parseCertificate(std::string_view certPem, std::string_view keyPem) {
  ERR_clear_error();
  if (certPem.empty()) {
    return Error{"no certificate (tls.crt is empty)"};
  }
  if (keyPem.empty()) {
    return Error{"no private key (tls.key is empty)"};
  }
  auto h = std::make_unique<Certificate::Handles>();
  Bio certBio = memBio(certPem);
  h->leaf.reset(PEM_read_bio_X509(certBio.get(), nullptr, nullptr, nullptr));
  if (!h->leaf) {
    return Error{sslError("tls.crt: no PEM certificate")};
  }
  h->chain.reset(sk_X509_new_null());
  if (!h->chain) {
    return Error{sslError("out of memory")};
  }
  for (int i = 0; i < 16; ++i) {
    X509Ptr next(PEM_read_bio_X509(certBio.get(), nullptr, nullptr, nullptr));
    if (!next) {
      break;
    }
    if (sk_X509_push(h->chain.get(), next.get()) == 0) {
      return Error{sslError("out of memory")};
    }
    next.release();  // the stack owns it now
  }
  ERR_clear_error();  // the end of the PEM stream reads as an error
  Bio keyBio = memBio(keyPem);
  h->key.reset(PEM_read_bio_PrivateKey(keyBio.get(), nullptr, nullptr, nullptr));
  if (!h->key) {
    return Error{sslError("tls.key: no PEM private key")};
  }
  const int type = EVP_PKEY_get_base_id(h->key.get());
  if (type == EVP_PKEY_RSA) {
    if (EVP_PKEY_get_bits(h->key.get()) < 2048) {
      return Error{"tls.key: RSA key shorter than 2048 bits"};
    }
  } else if (type != EVP_PKEY_EC) {
    return Error{"tls.key: not an EC or RSA key"};
  }
  if (X509_check_private_key(h->leaf.get(), h->key.get()) != 1) {
    return Error{sslError("tls.key does not match the certificate in tls.crt")};
  }
  return CertificatePtr(std::make_shared<const Certificate>(std::move(h)));
}

Result<CertificatePtr> certificateFromSecret(const k8s::Secret& secret) {
  if (secret.type != k8s::kTlsSecretType) {
    return Error{"type is " + secret.type + ", not " + std::string(k8s::kTlsSecretType)};
  }
  auto crt = secret.data.find("tls.crt");
  auto key = secret.data.find("tls.key");
  if (crt == secret.data.end() || key == secret.data.end()) {
    return Error{"tls.crt or tls.key missing"};
  }
  return parseCertificate(crt->second, key->second);
}

Result<CertificatePtr> loadCertificateFiles(const std::string& certPath,
                                            const std::string& keyPath) {
  auto read = [](const std::string& path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      return false;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    return true;
  };
  std::string crt, key;
  if (!read(certPath, crt)) {
    return Error{certPath + ": cannot read"};
  }
  if (!read(keyPath, key)) {
    return Error{keyPath + ": cannot read"};
  }
  return parseCertificate(crt, key);
}

CertificatePtr generateSelfSigned(std::string_view commonName) {
  ERR_clear_error();
  auto h = std::make_unique<Certificate::Handles>();
  h->key.reset(EVP_EC_gen("P-256"));
  h->leaf.reset(X509_new());
  h->chain.reset(sk_X509_new_null());
  if (!h->key || !h->leaf || !h->chain) {
    throw std::runtime_error(sslError("default certificate: key generation failed"));
  }
  X509* x = h->leaf.get();
  X509_set_version(x, 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) {
    throw std::runtime_error(sslError("default certificate: no random bytes"));
  }
  serial[0] &= 0x7f;  // positive
  CHandle<BIGNUM, &BN_free> bn(BN_bin2bn(serial, sizeof(serial), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x)) == nullptr) {
    throw std::runtime_error(sslError("default certificate: serial"));
  }
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600);
  X509_NAME* name = X509_get_subject_name(x);
  const std::string cn(commonName);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, name);
  if (X509_set_pubkey(x, h->key.get()) != 1 ||
      X509_sign(x, h->key.get(), EVP_sha256()) == 0) {
    throw std::runtime_error(sslError("default certificate: signing failed"));
  }
  return std::make_shared<const Certificate>(std::move(h));
}

}  // namespace kdp::tls
