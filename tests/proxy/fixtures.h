#pragma once
// Test helpers: a Snapshot from YAML text (tests/support), the sets/maps section of rendered
// nft text, and a node.

#include <catch2/catch.hpp>

#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "common/ip.h"
#include "proxy/compiler.h"
#include "support/snapshot.h"

namespace kdp::test {

/// The elements of every set and map in rendered `nft` text, one per line as
/// `<set>: <element>`: the dynamic part of the tables, for golden comparisons.
inline std::string setsOf(const std::string& text) {
  std::istringstream in(text);
  std::string line, out, set;
  while (std::getline(in, line)) {
    if (line.rfind("\tmap ", 0) == 0 || line.rfind("\tset ", 0) == 0) {
      set = line.substr(5, line.find(" {") - 5);
    } else if (line.rfind("\tchain ", 0) == 0) {
      set.clear();
    } else if (!set.empty() && line.rfind("\t\t\t", 0) == 0) {
      std::string element = line.substr(3);
      if (!element.empty() && element.back() == ',') {
        element.pop_back();
      }
      out += set + ": " + element + "\n";
    }
  }
  return out;
}

/// node-a at 192.0.2.10 (NodePorts there too), pods in 10.244.0.0/16.
inline proxy::NodeInfo nodeA() {
  proxy::NodeInfo n;
  n.name = "node-a";
  n.nodeIps = {*IpAddr::parse("192.0.2.10")};
  n.nodePortIps = n.nodeIps;
  n.clusterCidrs = {*Cidr::parse("10.244.0.0/16")};
  return n;
}

}  // namespace kdp::test
