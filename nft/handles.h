#pragma once
// RAII owners for every libnftnl and libmnl handle (STYLE.md 4): a handle lives in one of these
// from its first line. Functions that hand a child to its parent (nftnl_rule_add_expr,
// nftnl_set_elem_add) take ownership: write `parent, child.release()`.

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "common/c_handle.h"

namespace kdp::nft {

using TableHandle = CHandle<nftnl_table, &nftnl_table_free>;
using ChainHandle = CHandle<nftnl_chain, &nftnl_chain_free>;
using RuleHandle = CHandle<nftnl_rule, &nftnl_rule_free>;
using ExprHandle = CHandle<nftnl_expr, &nftnl_expr_free>;
using SetHandle = CHandle<nftnl_set, &nftnl_set_free>;
using SetElemHandle = CHandle<nftnl_set_elem, &nftnl_set_elem_free>;
using GenHandle = CHandle<nftnl_gen, &nftnl_gen_free>;
using MnlSocket = CHandle<mnl_socket, &mnl_socket_close>;

}  // namespace kdp::nft
