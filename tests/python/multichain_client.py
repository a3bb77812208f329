#!/usr/bin/env python3
"""Talks JSON-RPC to a Wattle node the way MultiChain's Python client libraries do.

Standard library only. Usage:

    python3 multichain_client.py http://USER:PASSWORD@HOST:PORT CHAIN

Like Savoir (and `requests`), the credentials travel in the URL and are sent as
`Authorization: Basic ...`; the body is `{"method", "params"}` only, or
`{"method", "params", "id", "chain_name"}`. The script also lets urllib's own Basic-auth
handler answer the server's `401` + `WWW-Authenticate: Basic realm="jsonrpc"` challenge.

It runs getinfo, listaddresses, getblockcount, an issue + listassets round trip and a few
error cases, checks the reply shapes against MultiChain's, prints one line per check and exits
with status 1 on the first mismatch (2 on bad usage).
"""

import base64
import decimal
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

GETINFO_KEYS = [
    "version", "nodeversion", "edition", "protocolversion", "chainname", "description",
    "protocol", "port", "setupblocks", "nodeaddress", "burnaddress", "incomingpaused",
    "miningpaused", "offchainpaused", "walletversion", "balance", "walletdbversion", "reindex",
    "blocks", "chainrewards", "streams", "timeoffset", "connections", "proxy", "difficulty",
    "testnet", "keypoololdest", "keypoolsize", "paytxfee", "relayfee", "errors",
]

LISTASSETS_KEYS = [
    "name", "issuetxid", "assetref", "multiple", "units", "open", "restrict", "fungible",
    "canopen", "canclose", "totallimit", "issuelimit", "details", "issuecount", "issueqty",
    "issueraw", "subscribed",
]

TIMEOUT = 30


class Mismatch(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Mismatch(what)
    print("ok   " + what.split("\n")[0])


class RpcError(Exception):
    def __init__(self, status, code, message):
        super().__init__("HTTP %s, error %s: %s" % (status, code, message))
        self.status, self.code, self.message = status, code, message


class MultiChainClient:
    """A Savoir-style client: `client.getinfo()`, `client.issue(addr, name, qty)`, ..."""

    def __init__(self, url, chain_name, minimal=False):
        parts = urllib.parse.urlsplit(url)
        self.user = urllib.parse.unquote(parts.username or "")
        self.password = urllib.parse.unquote(parts.password or "")
        self.endpoint = "%s://%s:%s%s" % (parts.scheme, parts.hostname, parts.port,
                                          parts.path or "/")
        self.chain_name = chain_name
        self.minimal = minimal
        self.next_id = 0

    def auth_header(self):
        token = base64.b64encode(("%s:%s" % (self.user, self.password)).encode()).decode()
        return "Basic " + token

    def post(self, payload, opener=None, send_auth=True):
        """POSTs a JSON body; returns (HTTP status, headers, decoded reply or None)."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Savoir-compat"}
        if send_auth:
            headers["Authorization"] = self.auth_header()
        req = urllib.request.Request(self.endpoint, data=data, headers=headers, method="POST")
        try:
            open_fn = opener.open if opener else urllib.request.urlopen
            with open_fn(req, timeout=TIMEOUT) as resp:
                status, hdrs, body = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, hdrs, body = e.code, e.headers, e.read()
        try:
            reply = json.loads(body, parse_float=decimal.Decimal)
        except ValueError:
            reply = None
        return status, hdrs, reply

    def payload(self, method, params):
        if self.minimal:
            return {"method": method, "params": list(params)}
        self.next_id += 1
        return {"method": method, "params": list(params), "id": self.next_id,
                "chain_name": self.chain_name}

    def call(self, method, *params):
        payload = self.payload(method, params)
        status, _, reply = self.post(payload)
        if not isinstance(reply, dict):
            raise Mismatch("%s: HTTP %s, reply is not a JSON object: %r" % (method, status, reply))
        if list(reply.keys()) != ["result", "error", "id"]:
            raise Mismatch("%s: reply keys %r" % (method, list(reply.keys())))
        if reply["id"] != payload.get("id"):
            raise Mismatch("%s: id %r echoed as %r" % (method, payload.get("id"), reply["id"]))
        if reply["error"] is not None:
            err = reply["error"]
            if reply["result"] is not None:
                raise Mismatch("%s: result must be null on error: %r" % (method, reply))
            raise RpcError(status, err.get("code"), err.get("message"))
        if status != 200:
            raise Mismatch("%s: success with HTTP %s" % (method, status))
        return reply["result"]

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *params: self.call(name, *params)


def is_txid(v):
    return isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v)


def expect_error(fn, status, code, what):
    try:
        result = fn()
    except RpcError as e:
        check(e.status == status and e.code == code,
              "%s -> HTTP %s error %s (got HTTP %s error %s: %s)"
              % (what, status, code, e.status, e.code, e.message))
        return e
    raise Mismatch("%s succeeded with %r, expected error %s" % (what, result, code))


def run(url, chain):
    full = MultiChainClient(url, chain)
    minimal = MultiChainClient(url, chain, minimal=True)

    # getinfo, both body forms.
    info = full.getinfo()
    check(isinstance(info, dict) and list(info.keys()) == GETINFO_KEYS,
          "getinfo has MultiChain's fields in order: %r" % (list(info.keys()),))
    check(info["chainname"] == chain, "getinfo chainname is %s" % chain)
    check(info["nodeaddress"] == "%s@127.0.0.1:%s" % (chain, info["port"]),
          "getinfo nodeaddress is CHAIN@IP:PORT (%s)" % info["nodeaddress"])
    info2 = minimal.getinfo()
    check(info2["chainname"] == chain, "getinfo with a {method, params} body")

    # listaddresses.
    addresses = full.listaddresses()
    check(isinstance(addresses, list) and len(addresses) >= 1, "listaddresses is a list")
    for a in addresses:
        check(list(a.keys()) == ["address", "ismine"] and a["ismine"] is True,
              "listaddresses entry {address, ismine}: %r" % (a,))
    check(minimal.listaddresses() == addresses, "listaddresses with a {method, params} body")
    addr = addresses[0]["address"]

    # getblockcount.
    height = full.getblockcount()
    check(isinstance(height, int) and height >= 0, "getblockcount is an integer (%s)" % height)
    check(isinstance(minimal.getblockcount(), int), "getblockcount, {method, params} body")

    # issue + listassets round trip.
    name = "py%d" % (int(time.time() * 1000) % 10**9)
    txid = full.issue(addr, {"name": name, "open": True}, 1000, 0.01, 0, {"source": "python"})
    check(is_txid(txid), "issue returns a txid (%s)" % txid)
    deadline = time.time() + TIMEOUT
    while True:
        assets = minimal.listassets(name)
        if assets and assets[0]["assetref"] is not None:
            break
        if time.time() > deadline:
            raise Mismatch("the issue was not confirmed in %ss: %r" % (TIMEOUT, assets))
        time.sleep(0.2)
    asset = assets[0]
    check(list(asset.keys()) == LISTASSETS_KEYS,
          "listassets has MultiChain's fields in order: %r" % (list(asset.keys()),))
    check(asset["name"] == name and asset["issuetxid"] == txid, "listassets name and issuetxid")
    check(asset["multiple"] == 100 and asset["units"] == decimal.Decimal("0.01"),
          "listassets multiple 100, units 0.01")
    check(asset["issueqty"] == 1000 and asset["issueraw"] == 100000,
          "listassets issueqty 1000, issueraw 100000")
    check(asset["open"] is True and asset["details"] == {"source": "python"},
          "listassets open and details")
    ref = asset["assetref"]
    parts = ref.split("-")
    check(len(parts) == 3 and all(p.isdigit() for p in parts)
          and int(parts[2]) == int(txid[0:2], 16) + 256 * int(txid[2:4], 16),
          "assetref is H-O-P with P from the txid (%s)" % ref)
    check(full.listassets(txid) == assets and full.listassets(ref) == assets,
          "listassets by issuetxid and by assetref")
    balances = full.getaddressbalances(addr)
    check({"name": name, "assetref": ref, "qty": 1000} in balances,
          "getaddressbalances shows the issued asset")
    for b in balances:
        check(list(b.keys()) == ["name", "assetref", "qty"], "balance entry {name, assetref, qty}")

    # Errors the libraries see.
    expect_error(lambda: full.nosuchmethod(), 404, -32601, "an unknown method")
    expect_error(lambda: full.issue(addr, name, 1), 500, -705, "a duplicate asset name")
    expect_error(lambda: full.getaddressbalances("not-an-address"), 500, -5, "an invalid address")
    e = expect_error(lambda: full.getblockhash(), 500, -1, "a wrong parameter count")
    check(e.message == full.help("getblockhash"), "the -1 message is the help text")
    wrong_chain = MultiChainClient(url, chain + "x")
    expect_error(lambda: wrong_chain.getinfo(), 400, -32600, "a wrong chain_name")
    status, _, reply = full.post(b"{this is not json")
    check(status == 500 and reply is not None and reply["error"]["code"] == -32700
          and reply["id"] is None, "broken JSON -> HTTP 500, -32700, id null")
    status, _, reply = full.post([{"method": "getblockcount", "params": [], "id": "a"},
                                  {"method": "getinfo", "params": [], "id": "b"}])
    check(status == 200 and isinstance(reply, list) and [r["id"] for r in reply] == ["a", "b"]
          and reply[1]["result"]["chainname"] == chain, "a batch answers an array in order")

    # Authentication: a wrong password is a 401 with the Basic challenge ...
    bad = MultiChainClient(url, chain)
    bad.password += "x"
    status, headers, _ = bad.post(bad.payload("getinfo", []))
    check(status == 401 and headers.get("WWW-Authenticate") == 'Basic realm="jsonrpc"',
          "a wrong password -> HTTP 401 with WWW-Authenticate: Basic realm=\"jsonrpc\"")
    # ... which urllib's own handler answers with the credentials from the URL.
    manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    manager.add_password(None, full.endpoint, full.user, full.password)
    opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(manager))
    status, _, reply = full.post(full.payload("getblockcount", []), opener=opener,
                                 send_auth=False)
    check(status == 200 and isinstance(reply["result"], int),
          "urllib's Basic-auth handler answers the 401 challenge")


def main(argv):
    if len(argv) != 3:
        print("usage: multichain_client.py http://USER:PASSWORD@HOST:PORT CHAIN", file=sys.stderr)
        return 2
    try:
        run(argv[1], argv[2])
    except (Mismatch, RpcError, urllib.error.URLError, OSError, KeyError, TypeError,
            IndexError, AttributeError, ValueError) as e:
        print("FAIL %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
