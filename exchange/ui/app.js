// Wattle energy exchange: the browser side of the three role pages (admin, producer, consumer).
//
// Plain JavaScript, no build step. The page's <body data-role> says which role it is; every
// section is optional and is filled only when the page has it. The page polls /api/status every
// second and reloads balances and lists when the block height changes (and every few seconds
// anyway, because offers and ecoin requests change without a block).
//
// Elements the browser test drives keep stable ids: #exchange-url #connect #request-qty #request
// #issue-energy #offer-energy #offer-ecoin #offer #approve-<index> #buy-<index> #balances
// #balance-<asset> (data-qty) #notice (data-seq, data-kind) #height #address, and for the order
// book #order-qty #order-price #place-order #book-asks / #book-bids (rows tr.level with data-price,
// data-qty, data-orders) #book-trades (rows with data-txid, data-price, data-qty, data-buyer,
// data-seller) #orders (rows #order-row-<id> with data-status, data-filled, data-remaining) and
// #cancel-<id>.
"use strict";

(() => {
  const ROLE = document.body.dataset.role;
  const POLL_MS = 1000;
  const IDLE_RELOAD_MS = 3000;
  const UNITS = { energy: "kWh", ecoin: "ecoin" };

  const state = {
    status: null,
    height: null,
    lastReload: 0,
    reloadWanted: true,
    reloading: false,
    balances: new Map(),
    inOrders: new Map(), // asset -> what this site's open orders hold in escrow
    rendered: new Map(), // section id -> JSON of the data it shows (skip identical redraws)
    busy: new Set(), // ids of buttons whose request is running
  };

  const $ = (id) => document.getElementById(id);

  // ---- small DOM helpers (text only: nothing from the network is parsed as HTML) ----

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function fmtQty(q, digits = 8) {
    const n = Number(q);
    if (!Number.isFinite(n)) return String(q ?? "–");
    return n.toLocaleString("en-US", { maximumFractionDigits: digits });
  }

  function short(text, head = 8, tail = 6) {
    const s = String(text ?? "");
    return s.length > head + tail + 1 ? `${s.slice(0, head)}…${s.slice(-tail)}` : s;
  }

  function copyable(text, head, tail, extraClass) {
    if (!text) return el("span", { class: "muted" }, "–");
    return el(
      "span",
      {
        class: `mono copy ${extraClass || ""}`.trim(),
        title: `${text} (click to copy)`,
        dataset: { full: text },
        onclick: () => copy(text),
      },
      short(text, head, tail),
    );
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        () => notify("ok", "Copied to the clipboard.", true),
        () => {},
      );
    }
  }

  // ---- talking to the service ----

  async function api(method, path, body) {
    const init = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new Error(`the exchange service does not answer (${e.message})`);
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!res.ok) {
      const err = data && data.error;
      const message = err && (err.message || err.code);
      const e = new Error(message || text.trim() || `HTTP ${res.status} ${res.statusText}`);
      e.code = err && err.code;
      throw e;
    }
    return data;
  }

  // ---- notices (the test reads #notice's data-seq and data-kind after every action) ----

  let noticeTimer = null;

  function notify(kind, message, fleeting) {
    const box = $("notice");
    if (!box) return;
    box.dataset.seq = String(Number(box.dataset.seq || 0) + 1);
    box.dataset.kind = kind;
    box.className = `notice ${kind}`;
    box.setAttribute("role", kind === "error" ? "alert" : "status");
    box.replaceChildren(
      el("span", { class: "text", id: "notice-text" }, message),
      el("button", { class: "close", type: "button", title: "Dismiss", onclick: () => (box.hidden = true) }, "×"),
    );
    box.hidden = false;
    clearTimeout(noticeTimer);
    if (fleeting || kind === "ok") noticeTimer = setTimeout(() => (box.hidden = true), fleeting ? 2500 : 12000);
  }

  // Runs one user action: disables its button while the request runs, reports the outcome.
  async function act(button, what, fn) {
    const id = button.id;
    if (state.busy.has(id)) return;
    state.busy.add(id);
    setBusy(button, true);
    try {
      const message = await fn();
      notify("ok", message);
    } catch (e) {
      notify("error", `${what} failed: ${e.message}`);
    } finally {
      state.busy.delete(id);
      const current = $(id); // a table redraw may have replaced the button
      if (current) setBusy(current, false);
      state.reloadWanted = true;
      reload();
    }
  }

  function setBusy(button, busy) {
    button.disabled = busy;
    button.classList.toggle("busy", busy);
    button.setAttribute("aria-busy", busy ? "true" : "false");
  }

  // A quantity as the user typed it: the service takes decimal text exactly, never via floats.
  function numberField(id, what) {
    const input = $(id);
    const raw = input ? input.value.trim() : "";
    const n = Number(raw);
    if (raw === "" || !Number.isFinite(n) || n <= 0) {
      if (input) input.focus();
      throw new Error(`enter ${what} as a positive number`);
    }
    return raw;
  }

  function textField(id, what) {
    const input = $(id);
    const value = input ? input.value.trim() : "";
    if (!value) {
      if (input) input.focus();
      throw new Error(`enter ${what}`);
    }
    return value;
  }

  // ---- header: role, address, height, exchange ----

  function renderStatus(s) {
    state.status = s;
    const address = $("address");
    if (address && address.dataset.full !== s.address) {
      address.textContent = s.address || "–";
      address.dataset.full = s.address || "";
    }
    const height = $("height");
    if (height) height.textContent = s.height ?? "–";
    const exchange = $("exchange-status");
    if (exchange) {
      exchange.textContent = s.exchange ? `connected to ${s.exchange}` : "not connected";
      exchange.className = s.exchange ? "connected" : "disconnected";
    }
    const url = $("exchange-url");
    if (url && s.exchange && !url.value && document.activeElement !== url) url.value = s.exchange;
  }

  function setLive(ok, detail, newBlock) {
    const live = $("live");
    if (!live) return;
    live.className = `live ${ok ? "on" : "off"}${newBlock ? " tick" : ""}`;
    live.textContent = ok ? "live" : "offline";
    live.title = detail || "";
  }

  // ---- balances ----

  function renderBalances(list) {
    const box = $("balances");
    if (!box) return;
    const rows = Array.isArray(list) ? list : [];
    const qty = new Map(rows.map((b) => [String(b.name), Number(b.qty)]));
    const locked = new Map(rows.map((b) => [String(b.name), Number(b.locked) || 0]));
    for (const asset of ["energy", "ecoin"]) if (!qty.has(asset)) qty.set(asset, 0);
    const held = state.inOrders;
    const key = JSON.stringify([[...qty], [...locked], [...held]]);
    if (state.rendered.get("balances") === key) return;
    state.rendered.set("balances", key);
    const before = state.balances;
    state.balances = qty;
    const names = [...qty.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    box.replaceChildren(
      ...names.map((name) => {
        const changed = before.size > 0 && before.get(name) !== qty.get(name);
        return el(
          "div",
          {
            class: `balance ${name === "energy" || name === "ecoin" ? name : ""}${changed ? " changed" : ""}`,
            id: `balance-${name}`,
            dataset: {
              asset: name,
              qty: String(qty.get(name)),
              locked: String(locked.get(name) || 0),
              inOrders: String(held.get(name) || 0),
            },
          },
          el("div", { class: "asset" }, name, UNITS[name] && UNITS[name] !== name ? el("span", { class: "unit" }, UNITS[name]) : null),
          el("div", { class: "qty" }, fmtQty(qty.get(name))),
          locked.get(name) > 0 ? el("div", { class: "locked" }, `+ ${fmtQty(locked.get(name))} locked in offers`) : null,
          held.get(name) > 0 ? el("div", { class: "locked" }, `+ ${fmtQty(held.get(name))} held in open orders`) : null,
        );
      }),
    );
  }

  const rank = (name) => (name === "energy" ? 0 : name === "ecoin" ? 1 : 2);

  // ---- tables ----

  function fill(tbodyId, key, columns, rows, emptyText) {
    const body = $(tbodyId);
    if (!body) return;
    if (state.rendered.get(tbodyId) === key) return;
    state.rendered.set(tbodyId, key);
    if (rows.length === 0) {
      body.replaceChildren(el("tr", {}, el("td", { class: "empty", colspan: columns }, emptyText)));
    } else {
      body.replaceChildren(...rows);
    }
    for (const id of state.busy) {
      const b = $(id);
      if (b) setBusy(b, true);
    }
  }

  function setCount(id, n) {
    const c = $(id);
    if (c) c.textContent = String(n);
  }

  function statusBadge(status) {
    return el("span", { class: `status ${status}` }, status);
  }

  function price(offer) {
    const given = offer.price === undefined || offer.price === null ? NaN : Number(offer.price);
    if (Number.isFinite(given)) return given;
    const energy = Number(offer.offer && offer.offer.qty);
    const ecoin = Number(offer.ask && offer.ask.qty);
    return energy > 0 ? ecoin / energy : NaN;
  }

  const mine = (addr) => state.status && addr && addr === state.status.address;

  function party(addr) {
    return [copyable(addr, 6, 4), mine(addr) ? el("span", { class: "tag" }, "you") : null];
  }

  // The column headers name the unit; another asset than the header's would be named.
  function assetCell(side, expected) {
    const s = side || {};
    const other = s.asset && s.asset !== expected ? ` ${s.asset}` : "";
    return el("td", { class: "num" }, `${fmtQty(s.qty)}${other}`);
  }

  function renderOffers(list, error) {
    if (!$("offers")) return;
    const columns = ROLE === "consumer" ? 7 : 6;
    if (error) {
      fill("offers", `error:${error}`, columns, [], error);
      setCount("offers-count", 0);
      return;
    }
    // Cheapest first, as a buyer reads a board; taken offers move to the trade history.
    const board = list.filter((o) => o.status === "open").sort((a, b) => price(a) - price(b) || a.index - b.index);
    const rows = board.map((o) => {
      const cells = [
        el("td", { class: "mono" }, `#${o.index}`),
        el("td", {}, party(o.ask_address)),
        assetCell(o.offer, "energy"),
        assetCell(o.ask, "ecoin"),
        el("td", { class: "num price" }, fmtQty(price(o), 4)),
        el("td", {}, statusBadge(o.status)),
      ];
      if (ROLE === "consumer") {
        const button =
          o.status === "open"
            ? el(
                "button",
                {
                  id: `buy-${o.index}`,
                  class: "buy small",
                  type: "button",
                  title: `Buy ${fmtQty(o.offer && o.offer.qty)} kWh for ${fmtQty(o.ask && o.ask.qty)} ecoin`,
                  onclick: (e) => buy(e.currentTarget, o),
                },
                "Buy",
              )
            : null;
        cells.push(el("td", {}, button));
      }
      return el("tr", { id: `offer-row-${o.index}`, class: mine(o.ask_address) ? "mine" : "", dataset: { status: o.status } }, cells);
    });
    const empty = ROLE === "producer" ? "No open offers. Place one with Sell energy." : "No open offers right now.";
    fill("offers", JSON.stringify(board), columns, rows, empty);
    setCount("offers-count", board.length);
  }

  function confirmations(n) {
    const c = n === undefined || n === null ? NaN : Number(n);
    if (!Number.isFinite(c)) return el("span", { class: "conf zero" }, "–");
    if (c <= 0) return el("span", { class: "conf zero", title: "sent, waiting for a block" }, "0");
    return el("span", { class: `conf${c >= 6 ? " deep" : ""}` }, String(c));
  }

  function renderHistory(list, error) {
    if (!$("history")) return;
    if (error) {
      fill("history", `error:${error}`, 8, [], error);
      setCount("history-count", 0);
      return;
    }
    // Taken offers: `pending` (the buyer's transaction is sent, not yet mined) and `done`.
    const done = list.filter((o) => o.status !== "open").sort((a, b) => b.index - a.index);
    const rows = done.map((o) =>
      el(
        "tr",
        { id: `trade-row-${o.index}`, class: mine(o.ask_address) || mine(o.bid_address) ? "mine" : "" },
        el("td", { class: "mono" }, `#${o.index}`),
        el("td", {}, party(o.ask_address)),
        el("td", {}, party(o.bid_address)),
        assetCell(o.offer, "energy"),
        assetCell(o.ask, "ecoin"),
        el("td", { class: "num" }, fmtQty(price(o), 4)),
        el("td", {}, copyable(o.txid, 8, 6, "txid")),
        el(
          "td",
          { class: "num", id: `confirmations-${o.index}`, dataset: { confirmations: String(o.confirmations ?? "") } },
          statusBadge(o.status),
          " ",
          confirmations(o.confirmations),
        ),
      ),
    );
    fill("history", JSON.stringify(done), 8, rows, "No trades yet.");
    setCount("history-count", done.length);
  }

  function renderRequests(list, error) {
    if (!$("requests")) return;
    const admin = ROLE === "admin";
    const columns = admin ? 6 : 4;
    if (error) {
      fill("requests", `error:${error}`, columns, [], error);
      setCount("requests-count", 0);
      return;
    }
    const shown = (admin ? list : list.filter((r) => mine(r.address))).sort(
      (a, b) => (a.status === "pending" ? 0 : 1) - (b.status === "pending" ? 0 : 1) || b.index - a.index,
    );
    const rows = shown.map((r) => {
      const cells = [el("td", { class: "mono" }, `#${r.index}`)];
      if (admin) cells.push(el("td", {}, party(r.address)));
      cells.push(
        el("td", { class: "num" }, fmtQty(r.qty)),
        el("td", {}, statusBadge(r.status)),
        el("td", {}, copyable(r.txid, 8, 4)),
      );
      if (admin) {
        const button =
          r.status === "pending"
            ? el(
                "button",
                { id: `approve-${r.index}`, class: "small", type: "button", onclick: (e) => approve(e.currentTarget, r) },
                "Approve",
              )
            : null;
        cells.push(el("td", {}, button));
      }
      return el("tr", { id: `request-row-${r.index}`, dataset: { status: r.status } }, cells);
    });
    const empty = admin ? "No ecoin requests." : "You have not requested ecoin yet.";
    fill("requests", JSON.stringify(shown), columns, rows, empty);
    setCount("requests-count", `${shown.filter((r) => r.status === "pending").length} pending`);
  }

  // ---- the order book (on chain: every node has it, no exchange connection needed) ----

  function levelRows(side, levels, max) {
    return levels.map((l) => {
      const bar = el("span", { class: "depth", "aria-hidden": "true" });
      const share = max > 0 ? Math.min(100, (Number(l.qty) / max) * 100) : 0;
      bar.style.width = `${share.toFixed(1)}%`; // CSSOM, which the page's CSP allows
      return el(
        "tr",
        { class: `level ${side}`, dataset: { price: String(l.price), qty: String(l.qty), orders: String(l.orders ?? "") } },
        el("td", { class: "num price" }, fmtQty(l.price)),
        el("td", { class: "num depth-cell" }, bar, el("span", { class: "depth-qty" }, fmtQty(l.qty))),
        el("td", { class: "num" }, fmtQty(l.value)),
        el("td", { class: "num" }, String(l.orders ?? "–")),
      );
    });
  }

  function renderBook(book, error) {
    if (!$("book-asks")) return;
    const spread = $("book-spread");
    if (error) {
      fill("book-asks", `error:${error}`, 4, [], error);
      fill("book-bids", `error:${error}`, 4, [], error);
      if (spread) spread.textContent = "unavailable";
      return;
    }
    const asks = Array.isArray(book && book.asks) ? book.asks : [];
    const bids = Array.isArray(book && book.bids) ? book.bids : [];
    const max = Math.max(0, ...asks.concat(bids).map((l) => Number(l.qty) || 0));
    fill("book-bids", JSON.stringify([bids, max]), 4, levelRows("bid", bids, max), "No bids: nobody is buying right now.");
    fill("book-asks", JSON.stringify([asks, max]), 4, levelRows("ask", asks, max), "No asks: nobody is selling right now.");
    if (spread) {
      const bestBid = bids.length ? Number(bids[0].price) : NaN;
      const bestAsk = asks.length ? Number(asks[0].price) : NaN;
      const parts = [];
      if (Number.isFinite(bestBid)) parts.push(`bid ${fmtQty(bestBid)}`);
      if (Number.isFinite(bestAsk)) parts.push(`ask ${fmtQty(bestAsk)}`);
      if (Number.isFinite(bestBid) && Number.isFinite(bestAsk)) parts.push(`spread ${fmtQty(bestAsk - bestBid, 4)}`);
      spread.textContent = parts.length ? parts.join(" · ") : "no orders";
    }
  }

  function clock(seconds) {
    const t = Number(seconds);
    if (!Number.isFinite(t) || t <= 0) return "–";
    return new Date(t * 1000).toLocaleTimeString("en-GB", { hour12: false });
  }

  function sideBadge(side) {
    return el("span", { class: `side-badge ${side}` }, side === "buy" ? "buy" : side === "sell" ? "sell" : String(side ?? "–"));
  }

  function renderTrades(list, error) {
    if (!$("book-trades")) return;
    if (error) {
      fill("book-trades", `error:${error}`, 9, [], error);
      setCount("book-trades-count", 0);
      return;
    }
    const rows = list.map((t) =>
      el(
        "tr",
        {
          class: `trade${mine(t.buyer) || mine(t.seller) ? " mine" : ""}`,
          dataset: { txid: t.txid, price: String(t.price), qty: String(t.qty), buyer: t.buyer, seller: t.seller },
        },
        el("td", { class: "num" }, String(t.height ?? "–")),
        el("td", {}, clock(t.time)),
        el("td", { title: "the incoming order that made the trade" }, sideBadge(t.side)),
        el("td", { class: "num price" }, fmtQty(t.price)),
        el("td", { class: "num" }, fmtQty(t.qty)),
        el("td", { class: "num" }, fmtQty(t.value)),
        el("td", {}, party(t.seller)),
        el("td", {}, party(t.buyer)),
        el("td", {}, copyable(t.txid, 8, 6, "txid")),
      ),
    );
    fill("book-trades", JSON.stringify(list), 9, rows, "No trades in the order book yet.");
    setCount("book-trades-count", list.length);
  }

  function renderOrders(list, error) {
    if (!$("orders")) return;
    const admin = ROLE === "admin";
    const columns = 8; // the admin's owner column takes the place of a site's cancel buttons
    if (error) {
      fill("orders", `error:${error}`, columns, [], error);
      setCount("orders-count", "–");
      return;
    }
    const rows = list.map((o) => {
      const open = o.status === "open";
      const cells = [el("td", {}, copyable(o.id, 8, 4, "order-id"))];
      if (admin) cells.push(el("td", {}, party(o.owner)));
      cells.push(
        el("td", {}, sideBadge(o.side)),
        el("td", { class: "num price" }, fmtQty(o.price)),
        el("td", { class: "num" }, fmtQty(o.qty)),
        el("td", { class: "num" }, fmtQty(o.filled)),
        el("td", { class: "num" }, fmtQty(o.remaining)),
        el("td", {}, statusBadge(o.status)),
      );
      if (!admin) {
        const button = open
          ? el(
              "button",
              {
                id: `cancel-${o.id}`,
                class: "secondary small",
                type: "button",
                title: `Cancel: ${o.side === "sell" ? `${fmtQty(o.remaining)} kWh` : "the ecoin held"} comes back to your wallet`,
                onclick: (e) => cancelOrder(e.currentTarget, o),
              },
              "Cancel",
            )
          : null;
        cells.push(el("td", {}, button));
      }
      return el(
        "tr",
        {
          id: `order-row-${o.id}`,
          class: !admin && open ? "mine" : "",
          dataset: { status: o.status, side: o.side, filled: String(o.filled), remaining: String(o.remaining) },
        },
        cells,
      );
    });
    const empty = admin
      ? "No open orders."
      : ROLE === "producer"
        ? "No orders yet. Post one with Sell order."
        : "No orders yet. Post one with Buy order.";
    fill("orders", JSON.stringify(list), columns, rows, empty);
    setCount("orders-count", `${list.filter((o) => o.status === "open").length} open`);
  }

  // What this site's open orders hold: a sell order its energy left, a buy order the ecoin for
  // the energy it still wants at its limit.
  function heldInOrders(list) {
    const held = new Map();
    if (ROLE === "admin") return held;
    const add = (asset, q) => held.set(asset, (held.get(asset) || 0) + q);
    for (const o of list) {
      if (o.status !== "open") continue;
      const left = Number(o.remaining) || 0;
      if (o.side === "sell") add(o.base || "energy", left);
      else add(o.quote || "ecoin", left * (Number(o.price) || 0));
    }
    return held;
  }

  // ---- loading ----

  const paths =
    ROLE === "admin"
      ? { offers: "/api/admin/exchange_list?status=all", requests: "/api/admin/ecoin_requests" }
      : { offers: "/api/exchange_list?status=all", requests: ROLE === "consumer" ? "/api/ecoin_requests" : null };
  paths.book = "/api/orderbook?levels=15";
  paths.trades = "/api/trades?count=25";
  // The admin sees every owner's open orders; a site all of its own.
  paths.orders = ROLE === "admin" ? "/api/orders?status=open&count=100" : "/api/orders?status=all&count=50";

  async function reload() {
    if (state.reloading) {
      state.reloadWanted = true;
      return;
    }
    state.reloading = true;
    state.reloadWanted = false;
    state.lastReload = Date.now();
    try {
      const connected = ROLE === "admin" || (state.status && state.status.exchange);
      const notConnected = "Connect to an exchange to see its board.";
      const [balances, offers, requests, book, trades, orders] = await Promise.allSettled([
        api("GET", "/api/balances"),
        connected ? api("GET", paths.offers) : Promise.reject(new Error(notConnected)),
        paths.requests && connected ? api("GET", paths.requests) : Promise.reject(new Error(notConnected)),
        api("GET", paths.book),
        api("GET", paths.trades),
        api("GET", paths.orders),
      ]);
      const listOf = (r) => (r.status === "fulfilled" && Array.isArray(r.value) ? r.value : []);
      const errorOf = (r) => (r.status === "rejected" ? r.reason.message : null);
      renderBook(book.status === "fulfilled" ? book.value : null, errorOf(book));
      renderTrades(listOf(trades), errorOf(trades));
      renderOrders(listOf(orders), errorOf(orders));
      if (orders.status === "fulfilled") state.inOrders = heldInOrders(listOf(orders));
      if (balances.status === "fulfilled") renderBalances(balances.value);
      const offerList = offers.status === "fulfilled" && Array.isArray(offers.value) ? offers.value : [];
      const offerError = offers.status === "rejected" ? offers.reason.message : null;
      renderOffers(offerList, offerError);
      renderHistory(offerList, offerError);
      if (paths.requests) {
        const list = requests.status === "fulfilled" && Array.isArray(requests.value) ? requests.value : [];
        renderRequests(list, requests.status === "rejected" ? requests.reason.message : null);
      }
    } finally {
      state.reloading = false;
      if (state.reloadWanted) setTimeout(reload, 0);
    }
  }

  async function poll() {
    try {
      const s = await api("GET", "/api/status");
      const newBlock = state.height !== null && s.height !== state.height;
      const exchangeChanged = state.status && state.status.exchange !== s.exchange;
      renderStatus(s);
      setLive(true, `block ${s.height}`, newBlock);
      if (s.height !== state.height || exchangeChanged) state.reloadWanted = true;
      state.height = s.height;
      if (state.reloadWanted || Date.now() - state.lastReload >= IDLE_RELOAD_MS) await reload();
    } catch (e) {
      setLive(false, e.message);
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  // ---- role actions ----

  function approve(button, r) {
    act(button, `Approving request #${r.index}`, async () => {
      const res = await api("POST", "/api/admin/issue_ecoin", { index: r.index });
      return `Issued ${fmtQty(r.qty)} ecoin for request #${r.index}: transaction ${short(res && res.txid, 12, 6)}.`;
    });
  }

  function buy(button, o) {
    act(button, `Buying offer #${o.index}`, async () => {
      const res = await api("POST", "/api/consumer/accept_exchange", { index: o.index });
      return `Bought ${fmtQty(o.offer && o.offer.qty)} kWh for ${fmtQty(o.ask && o.ask.qty)} ecoin: transaction ${short(res && res.txid, 12, 6)}. It completes when a block confirms it.`;
    });
  }

  function cancelOrder(button, o) {
    act(button, `Cancelling order ${short(o.id, 8, 4)}`, async () => {
      await api("POST", `/api/${ROLE}/cancel_order`, { order: o.id });
      const back = o.side === "sell" ? `its ${fmtQty(o.remaining)} kWh are` : "the ecoin it held is";
      return `Order ${short(o.id, 8, 4)} cancelled: ${back} back in your wallet.`;
    });
  }

  // What a placed order did, from the order as the chain left it (with its fills).
  function orderOutcome(o) {
    if (!o) return "sent";
    const trades = Array.isArray(o.trades) ? o.trades : [];
    const value = trades.reduce((sum, t) => sum + (Number(t.value) || 0), 0);
    const paid = trades.length ? ` for ${fmtQty(value)} ecoin${o.side === "sell" ? " received" : ""}` : "";
    if (o.status === "filled") return `filled at once: ${fmtQty(o.filled)} kWh${paid}`;
    if (Number(o.filled) > 0) return `${fmtQty(o.filled)} kWh filled at once${paid}, ${fmtQty(o.remaining)} kWh rest in the order book`;
    if (o.status === "open") return "resting in the order book";
    return String(o.status);
  }

  function onSubmit(formId, what, fn) {
    const form = $(formId);
    if (!form) return;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const button = e.submitter || form.querySelector("button[type=submit]");
      act(button, what, fn);
    });
  }

  function wire() {
    onSubmit("connect-form", "Connecting to the exchange", async () => {
      const exchange = textField("exchange-url", "the exchange URL").replace(/\/+$/, "");
      const res = await api("POST", `/api/${ROLE}/reg_exchange_ip`, { exchange });
      const url = (res && res.exchange) || exchange;
      return `Connected to the exchange at ${url}: its administrator granted this node the ${ROLE}'s permissions.`;
    });

    onSubmit("connect-node-form", "Connecting the node", async () => {
      const address = textField("node-address", "the site's wallet address");
      const type = $("node-type").value;
      await api("POST", "/api/admin/connect_node", { address, type });
      $("node-address").value = "";
      return `Connected ${short(address, 10, 6)} as a ${type}.`;
    });

    onSubmit("schedule-form", "Recording the payment", async () => {
      const address = textField("schedule-address", "the consumer's address");
      const qty = numberField("schedule-qty", "the ecoin quantity");
      const res = await api("POST", "/api/admin/schedule_ecoin_issue", { address, qty });
      $("schedule-address").value = "";
      $("schedule-qty").value = "";
      return `Added request #${res && res.index} for ${fmtQty(qty)} ecoin; approve it below.`;
    });

    onSubmit("request-form", "Requesting ecoin", async () => {
      const qty = numberField("request-qty", "the ecoin quantity");
      const res = await api("POST", "/api/consumer/request_ecoin_issue", { qty });
      $("request-qty").value = "";
      return `Requested ${fmtQty(qty)} ecoin (request #${res && res.index}); the administrator will approve it.`;
    });

    onSubmit("offer-form", "Placing the offer", async () => {
      const qty_energy = numberField("offer-energy", "the energy in kWh");
      const qty_ecoin = numberField("offer-ecoin", "the price in ecoin");
      const res = await api("POST", "/api/producer/propose_exchange", { qty_energy, qty_ecoin });
      $("offer-energy").value = "";
      $("offer-ecoin").value = "";
      updatePricePreview();
      return `Offer #${res && res.index} placed: ${fmtQty(qty_energy)} kWh for ${fmtQty(qty_ecoin)} ecoin.`;
    });

    const selling = ROLE === "producer";
    onSubmit("order-form", selling ? "Posting the sell order" : "Posting the buy order", async () => {
      const qty = numberField("order-qty", "the energy in kWh");
      const price = numberField("order-price", "the price in ecoin per kWh");
      const res = await api("POST", selling ? "/api/producer/sell_order" : "/api/consumer/buy_order", { qty, price });
      $("order-qty").value = "";
      $("order-price").value = "";
      updateOrderTotal();
      const verb = selling ? "Sell" : "Buy";
      return `${verb} order for ${fmtQty(qty)} kWh at ${fmtQty(price)} ecoin/kWh: ${orderOutcome(res && res.order)}. Order ${short(res && res.txid, 10, 6)}.`;
    });
    for (const id of ["order-qty", "order-price"]) {
      const input = $(id);
      if (input) input.addEventListener("input", updateOrderTotal);
    }

    const issue = $("issue-energy");
    if (issue) {
      issue.addEventListener("click", () =>
        act(issue, "Issuing energy", async () => {
          const res = await api("POST", "/api/producer/issue_energy", {});
          return `Issued ${fmtQty(res && res.qty)} kWh of energy: transaction ${short(res && res.txid, 12, 6)}. It shows in your balance once a block confirms it.`;
        }),
      );
    }

    for (const id of ["offer-energy", "offer-ecoin"]) {
      const input = $(id);
      if (input) input.addEventListener("input", updatePricePreview);
    }

    const address = $("address");
    if (address) address.addEventListener("click", () => address.dataset.full && copy(address.dataset.full));
  }

  function updatePricePreview() {
    const out = $("offer-price");
    if (!out) return;
    const energy = Number($("offer-energy").value);
    const ecoin = Number($("offer-ecoin").value);
    // An estimate for the eye only; what is sent is the text as typed.
    out.textContent = energy > 0 && ecoin > 0 ? `= ${fmtQty(ecoin / energy, 4)} ecoin per kWh` : "";
  }

  function updateOrderTotal() {
    const out = $("order-total");
    if (!out) return;
    const qty = Number($("order-qty").value);
    const price = Number($("order-price").value);
    if (!(qty > 0 && price > 0)) {
      out.textContent = "";
      return;
    }
    // An estimate for the eye only; the service checks the exact total.
    const total = fmtQty(qty * price, 8);
    out.textContent =
      ROLE === "producer" ? `= at least ${total} ecoin for ${fmtQty(qty)} kWh` : `= at most ${total} ecoin for ${fmtQty(qty)} kWh (held until filled)`;
  }

  wire();
  poll();
})();
