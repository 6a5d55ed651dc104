#pragma once
// Which components a command runs, built from their options.

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/cli.h"
#include "common/component.h"

namespace kdp::app {

/// Thrown for a component whose issue has not landed yet.
struct NotBuilt : std::runtime_error {
  explicit NotBuilt(const std::string& component)
      : std::runtime_error("the " + component + " component is not built yet") {}
};

/// `proxy`, `dns`, `ingress`: that component. `run`: each component whose flags are given
/// (proxy: --node-name; dns: --listen; ingress: --http or --https); none is fine (the store and
/// metrics alone). Throws NotBuilt, or std::runtime_error for options a component refuses.
std::vector<std::unique_ptr<Component>> makeComponents(const Options& options);

}  // namespace kdp::app
