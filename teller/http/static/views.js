/*
 * Rendering (window.TellerViews): data in, DOM out. Server text only ever lands in textContent,
 * never in innerHTML, so nothing the API returns can run as code in the wallet page.
 */
(function () {
  "use strict";

  var F = window.TellerFormat;
  var TOAST_VISIBLE_MS = 2200;
  var STATUS_LABELS = {
    pending: "Pending", credited: "Credited", orphaned: "Reversed", signed: "Signed",
    broadcast: "Sent", confirmed: "Completed", failed: "Failed", verified: "Verified",
  };
  var STATUS_TONES = {
    pending: "warn", signed: "warn", broadcast: "warn", credited: "ok", confirmed: "ok",
    verified: "ok", orphaned: "bad", failed: "bad",
  };

  function h(tag, attrs) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") el.textContent = value;
      else if (key === "className") el.className = value;
      else el.setAttribute(key, value === true ? "" : value);
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      el.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return el;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  function badge(status) {
    return h("span", {
      className: "badge " + (STATUS_TONES[status] || "neutral"),
      text: STATUS_LABELS[status] || String(status),
      "data-status": status,
    });
  }

  function assetIcon(asset) {
    return h("span", { className: "asset-icon asset-" + String(asset).toLowerCase(), "aria-hidden": "true", text: String(asset).slice(0, 4) });
  }

  function renderBalances(list, balances) {
    clear(list);
    if (!balances.length) {
      list.appendChild(h("li", { className: "empty", text: "No balances yet. Deposit to get started." }));
      return;
    }
    balances.forEach(function (b) {
      var held = F.toMinor(b.held, b.decimals);
      var label = F.unit(b.asset) + " on " + F.chainName(b.chain);
      list.appendChild(h("li", { className: "asset-row", "data-asset": b.asset, "data-chain": b.chain || "" },
        assetIcon(b.asset),
        h("span", { className: "asset-name" },
          h("strong", { text: F.unit(b.asset) }),
          h("span", { className: "hint", text: F.chainName(b.chain) })),
        h("span", { className: "asset-amount" },
          h("strong", { className: "num balance-available", "aria-label": label + " available: " + b.available, text: F.amount(b.available) }),
          held && held > 0n ? h("span", { className: "hint num balance-held", text: F.amount(b.held) + " on hold" }) : null)));
    });
  }

  function renderQr(box, text) {
    clear(box);
    if (!text) return;
    var qr = window.TellerQR.encode(text);
    box.appendChild(window.TellerQR.toSvg(qr, { quietZone: 4 }));
  }

  function activityRow(item) {
    var incoming = item.kind === "deposit";
    var sign = incoming ? "+" : "−";
    var details = [F.chainName(item.chain)];
    if (incoming && item.status === "pending") {
      details.push(item.confirmations + "/" + item.required_confirmations + " confirmations");
    }
    if (!incoming && item.to) details.push("to " + F.shortHash(item.to));
    var when = F.dateTime(item.created_at);
    if (when) details.push(when);
    return h("li", { className: "activity-row", "data-kind": item.kind, "data-id": item.id },
      h("span", { className: "activity-icon " + (incoming ? "in" : "out"), "aria-hidden": "true", text: incoming ? "↓" : "↑" }),
      h("span", { className: "activity-main" },
        h("strong", { text: incoming ? "Deposit" : "Withdrawal" }),
        h("span", { className: "hint", text: details.join(" · ") }),
        !incoming && item.status === "failed" && item.failure_reason
          ? h("span", { className: "hint bad-text", text: "Refunded: " + item.failure_reason }) : null,
        item.tx_hash ? h("span", { className: "hint mono", title: item.tx_hash, text: "Tx " + F.shortHash(item.tx_hash) }) : null),
      h("span", { className: "activity-side" },
        h("strong", { className: "num " + (incoming ? "in-text" : ""), text: sign + F.amount(item.amount) + " " + item.asset }),
        badge(item.status)));
  }

  function renderActivity(list, deposits, withdrawals) {
    clear(list);
    var items = deposits.map(function (d) { return Object.assign({ kind: "deposit" }, d); })
      .concat(withdrawals.map(function (w) { return Object.assign({ kind: "withdrawal" }, w); }));
    items.sort(function (a, b) { return String(b.created_at).localeCompare(String(a.created_at)); });
    items.forEach(function (item) { list.appendChild(activityRow(item)); });
    return items.length;
  }

  function detail(term, value, copyable) {
    var dd = h("dd", { className: copyable ? "mono" : "", text: value });
    return h("div", { className: copyable ? "stack" : "" }, h("dt", { text: term }), dd,
      copyable ? h("button", { type: "button", className: "link-button", "data-copy": copyable, "aria-label": "Copy " + term, text: "Copy" }) : null);
  }

  function renderIrtInfo(dl, info) {
    clear(dl);
    dl.appendChild(detail("IBAN", F.iban(info.iban), info.iban));
    dl.appendChild(detail("Account owner", info.account_owner));
    dl.appendChild(detail("Bank", info.bank));
  }

  var toastTimer = null;
  function toast(text) {
    var el = document.getElementById("toast");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { el.hidden = true; }, TOAST_VISIBLE_MS);
  }

  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (err) {
      // Older webviews: the selection fallback.
      var area = h("textarea", { className: "visually-hidden", readonly: true });
      area.value = text;
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy"); } finally { area.remove(); }
    }
    toast("Copied");
  }

  function showError(el, message) {
    el.textContent = message || "";
    el.hidden = !message;
  }

  window.TellerViews = {
    h: h, clear: clear, renderBalances: renderBalances, renderQr: renderQr,
    renderActivity: renderActivity, renderIrtInfo: renderIrtInfo, badge: badge,
    toast: toast, copyText: copyText, showError: showError,
  };
})();
