/*
 * Display helpers (window.TellerFormat). Amounts stay decimal strings end to end: the page never
 * turns money into a JavaScript number, and compares amounts as BigInt in the asset's smallest unit.
 */
(function () {
  "use strict";

  var CHAIN_NAMES = {
    ethereum: "Ethereum", bsc: "BNB Smart Chain", polygon: "Polygon", arbitrum: "Arbitrum",
    optimism: "Optimism", base: "Base", sepolia: "Sepolia", anvil: "Anvil (dev)",
  };
  var DECIMAL_RE = /^(\d+)(?:\.(\d+))?$/;
  // The unit a user reads after an amount, where it is not the asset's symbol. The API's IRT is the
  // toman (1 toman = 10 rials) and its amounts are already in tomans: only the label changes here.
  var UNIT_NAMES = { IRT: "Toman" };

  function chainName(chain) {
    if (!chain) return "Bank transfer";
    return CHAIN_NAMES[chain] || chain.charAt(0).toUpperCase() + chain.slice(1);
  }

  function unit(asset) {
    return Object.prototype.hasOwnProperty.call(UNIT_NAMES, asset) ? UNIT_NAMES[asset] : String(asset);
  }

  // "1250000" -> "1,250,000"; "10.5" -> "10.5". Purely textual, so no digit is ever rounded.
  function amount(text) {
    var value = String(text);
    var negative = value.charAt(0) === "-";
    if (negative) value = value.slice(1);
    var match = DECIMAL_RE.exec(value);
    if (!match) return String(text);
    var whole = match[1].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (negative ? "−" : "") + whole + (match[2] ? "." + match[2] : "");
  }

  // A decimal string to BigInt minor units, or null when it is not a valid amount for `decimals`.
  function toMinor(text, decimals) {
    var match = DECIMAL_RE.exec(String(text).trim());
    if (!match) return null;
    var fraction = match[2] || "";
    if (fraction.length > decimals) return null;
    return BigInt(match[1] + fraction.padEnd(decimals, "0"));
  }

  function fromMinor(minor, decimals) {
    var negative = minor < 0n;
    var digits = (negative ? -minor : minor).toString().padStart(decimals + 1, "0");
    var whole = digits.slice(0, digits.length - decimals);
    var fraction = decimals ? digits.slice(digits.length - decimals).replace(/0+$/, "") : "";
    return (negative ? "-" : "") + whole + (fraction ? "." + fraction : "");
  }

  function shortHash(text) {
    if (!text) return "";
    return text.length > 14 ? text.slice(0, 8) + "…" + text.slice(-6) : text;
  }

  function dateTime(rfc3339) {
    var when = new Date(rfc3339);
    if (isNaN(when.getTime())) return "";
    return when.toLocaleString(undefined, {
      day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
    });
  }

  // "603799******7890" -> "6037 99•• •••• 7890"
  function card(masked) {
    var shown = String(masked).replace(/\*/g, "•");
    return shown.replace(/(.{4})(?=.)/g, "$1 ");
  }

  function iban(text) {
    return String(text).replace(/\s+/g, "").replace(/(.{4})(?=.)/g, "$1 ");
  }

  function luhnValid(digits) {
    if (!/^\d{16}$/.test(digits)) return false;
    var sum = 0;
    for (var i = 0; i < digits.length; i++) {
      var d = Number(digits.charAt(digits.length - 1 - i));
      if (i % 2 === 1) { d *= 2; if (d > 9) d -= 9; }
      sum += d;
    }
    return sum % 10 === 0;
  }

  window.TellerFormat = {
    chainName: chainName, unit: unit, amount: amount, toMinor: toMinor, fromMinor: fromMinor,
    shortHash: shortHash, dateTime: dateTime, card: card, iban: iban, luhnValid: luhnValid,
  };
})();
