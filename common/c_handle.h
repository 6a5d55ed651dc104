#pragma once
// One deleter for every C library handle: a handle lives in a unique_ptr from its first line.
//   using SslCtx = CHandle<SSL_CTX, &SSL_CTX_free>;

#include <memory>

namespace kdp {

template <auto Fn>
struct CDeleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Fn(p);
  }
};

template <class T, auto Fn>
using CHandle = std::unique_ptr<T, CDeleter<Fn>>;

}  // namespace kdp
