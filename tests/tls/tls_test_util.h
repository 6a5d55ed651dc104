#pragma once
// Test helpers: PEM certificates and keys made on the fly (EC P-256 or RSA), self-signed.

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>
#include <vector>

#include "common/c_handle.h"

namespace kdp::tls::test {

struct Pem {
  std::string crt;
  std::string key;
};

inline std::string bioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

/// A self-signed certificate for `names` (the first is the CN; all are SAN DNS names).
inline Pem makePem(const std::vector<std::string>& names, bool rsa = false, int rsaBits = 2048) {
  CHandle<EVP_PKEY, &EVP_PKEY_free> key(rsa ? EVP_RSA_gen(static_cast<unsigned>(rsaBits))
                                            : EVP_EC_gen("P-256"));
  CHandle<X509, &X509_free> x(X509_new());
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 3600);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(names.at(0).c_str()), -1, -1,
                             0);
  X509_set_issuer_name(x.get(), name);
  std::string san;
  for (const auto& n : names) {
    san += (san.empty() ? "DNS:" : ",DNS:") + n;
  }
  CHandle<X509_EXTENSION, &X509_EXTENSION_free> ext(
      X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str()));
  X509_add_ext(x.get(), ext.get(), -1);
  X509_set_pubkey(x.get(), key.get());
  X509_sign(x.get(), key.get(), EVP_sha256());
  CHandle<BIO, &BIO_free_all> crtBio(BIO_new(BIO_s_mem()));
  CHandle<BIO, &BIO_free_all> keyBio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(crtBio.get(), x.get());
  PEM_write_bio_PrivateKey(keyBio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  return Pem{bioText(crtBio.get()), bioText(keyBio.get())};
}

}  // namespace kdp::tls::test
