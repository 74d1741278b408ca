/*
 * The Mini App: sign-in, then the wallet screens. Data comes from the API only (api.js); each
 * screen loads on its own, and a route that answers with an error (a flow not configured here,
 * say) hides its section instead of breaking the page.
 */
(function () {
  "use strict";

  var F = window.TellerFormat;
  var V = window.TellerViews;
  var T = window.TellerTelegram;
  var ApiError = window.TellerApi.ApiError;
  var REFRESH_INTERVAL_MS = 20000;
  // Sign-in answers after which only Telegram can help: new init data comes only with a reopened wallet.
  var SESSION_OVER_CODES = ["expired_init_data", "invalid_init_data"];
  var SESSION_OVER_MESSAGE = "Your wallet session has ended. Close the wallet and open it again from the bot.";
  var DEV_ID_KEY = "teller.devTelegramId";
  var api = window.TellerApi.createClient();
  var state = { config: { dev: false }, assets: [], balances: [], addresses: {}, chain: null };
  var withdraw = null;
  var refreshTimer = null;
  var rial = null;

  function byId(id) { return document.getElementById(id); }

  function showScreen(name) {
    ["loading", "signin", "wallet"].forEach(function (s) { byId("screen-" + s).hidden = s !== name; });
    byId("app").setAttribute("aria-busy", "false");
  }

  function showSignIn(message) {
    byId("signin-dev").hidden = !state.config.dev;
    byId("signin-telegram").hidden = Boolean(state.config.dev);
    var bot = state.config.bot_username;
    var link = byId("open-in-telegram");
    link.hidden = !bot;
    if (bot) link.href = "https://t.me/" + encodeURIComponent(bot);
    V.showError(byId("signin-error"), message || "");
    byId("sign-out").hidden = true;
    byId("who-name").textContent = "";
    showScreen("signin");
  }

  function storedDevId() {
    try { return sessionStorage.getItem(DEV_ID_KEY) || ""; } catch (err) { return ""; }
  }

  // --- balances and assets ---
  async function loadBalances() {
    try {
      var answer = await api.get("/api/v1/balances");
      state.balances = answer.balances || [];
      V.renderBalances(byId("balance-list"), state.balances);
      V.showError(byId("balances-error"), "");
      if (withdraw) withdraw.refresh();
    } catch (err) {
      V.showError(byId("balances-error"), "Balances could not be loaded. " + err.message);
    }
  }

  function cryptoChains() {
    var chains = [];
    state.assets.forEach(function (a) { if (a.chain && chains.indexOf(a.chain) < 0) chains.push(a.chain); });
    return chains;
  }

  async function loadAssets() {
    try {
      var answer = await api.get("/api/v1/assets");
      state.assets = answer.assets || [];
    } catch (err) {
      state.assets = [];
    }
    var chains = cryptoChains();
    byId("tab-deposit").hidden = byId("tab-withdraw").hidden = chains.length === 0;
    withdraw.setAssets(state.assets);
    renderChainChips(chains);
    if (chains.length) selectChain(state.chain && chains.indexOf(state.chain) >= 0 ? state.chain : chains[0]);
    else selectTab("activity");
  }

  // --- deposit ---
  function renderChainChips(chains) {
    var box = byId("deposit-chains");
    V.clear(box);
    box.hidden = chains.length < 2;
    chains.forEach(function (chain) {
      var chip = V.h("button", { type: "button", role: "radio", className: "chip", "data-chain": chain, text: F.chainName(chain) });
      chip.addEventListener("click", function () { selectChain(chain); });
      box.appendChild(chip);
    });
  }

  function depositNote(chain) {
    var here = state.assets.filter(function (a) { return a.chain === chain; });
    var names = here.map(function (a) { return a.asset; }).join(" or ");
    var counts = here.map(function (a) { return a.confirmations; });
    var same = counts.every(function (n) { return n === counts[0]; });
    var when = same ? counts[0] + " network confirmations"
      : here.map(function (a) { return a.asset + " " + a.confirmations; }).join(", ") + " confirmations";
    return "Send only " + names + " on the " + F.chainName(chain) + " network to this address; " +
      "other assets or networks may be lost. Deposits are credited after " + when + ".";
  }

  async function selectChain(chain) {
    state.chain = chain;
    Array.prototype.forEach.call(byId("deposit-chains").children, function (chip) {
      chip.setAttribute("aria-checked", String(chip.getAttribute("data-chain") === chain));
    });
    byId("deposit-note").textContent = depositNote(chain);
    var addressEl = byId("deposit-address");
    var copyButton = byId("copy-address");
    V.showError(byId("deposit-error"), "");
    if (!state.addresses[chain]) {
      addressEl.textContent = "Loading…";
      copyButton.disabled = true;
      V.clear(byId("deposit-qr"));
      try {
        var answer = await api.post("/api/v1/deposit-addresses", { chain: chain });
        state.addresses[chain] = answer.address;
      } catch (err) {
        if (state.chain !== chain) return;
        addressEl.textContent = "";
        V.showError(byId("deposit-error"), "The deposit address could not be loaded. " + err.message);
        return;
      }
    }
    if (state.chain !== chain) return; // the user picked another network meanwhile
    var address = state.addresses[chain];
    addressEl.textContent = address;
    addressEl.setAttribute("data-address", address);
    copyButton.disabled = false;
    // A plain address: every wallet's scanner reads it, and one address takes every asset of the chain.
    V.renderQr(byId("deposit-qr"), address);
  }

  // --- activity ---
  async function loadActivity() {
    var results = await Promise.allSettled([api.get("/api/v1/deposits"), api.get("/api/v1/withdrawals")]);
    var deposits = results[0].status === "fulfilled" ? results[0].value.deposits || [] : [];
    var withdrawals = results[1].status === "fulfilled" ? results[1].value.withdrawals || [] : [];
    var count = V.renderActivity(byId("activity-list"), deposits, withdrawals);
    var failed = results.filter(function (r) { return r.status === "rejected"; });
    byId("activity-empty").hidden = count > 0 || failed.length > 0;
    V.showError(byId("activity-error"), failed.length === 2 ? "Activity could not be loaded. " + failed[0].reason.message : "");
  }

  // --- rial (rial.js) ---
  async function loadRial() {
    var available = await rial.load();
    byId("tab-rial").hidden = !available;
    if (!available && byId("tab-rial").getAttribute("aria-selected") === "true") selectTab("deposit");
  }

  // --- tabs, refresh, boot ---
  function selectTab(name) {
    ["deposit", "withdraw", "activity", "rial"].forEach(function (tab) {
      var on = tab === name;
      byId("tab-" + tab).setAttribute("aria-selected", String(on));
      byId("panel-" + tab).hidden = !on;
    });
  }

  function refreshAll() {
    return Promise.all([loadBalances(), loadActivity()]);
  }

  function startPolling() {
    if (refreshTimer !== null) return;
    refreshTimer = setInterval(function () {
      if (document.visibilityState === "visible" && !byId("screen-wallet").hidden) refreshAll();
    }, REFRESH_INTERVAL_MS);
  }

  // The Telegram session is over (its init data expired): no more polling or signing in, nothing of
  // the wallet left on screen, and words that say what to do.
  function endSession() {
    clearInterval(refreshTimer);
    refreshTimer = null;
    api.signOut();
    api.onUnauthorized(function () { throw new ApiError(401, "session_ended", SESSION_OVER_MESSAGE); });
    state.balances = [];
    state.addresses = {};
    ["balance-list", "activity-list", "deposit-qr", "card-list", "irt-info"].forEach(function (id) { V.clear(byId(id)); });
    byId("deposit-address").textContent = "";
    showSignIn(SESSION_OVER_MESSAGE);
  }

  // Re-sign in with Telegram's init data; when the server says it is no longer good, end the session.
  function telegramReauthenticator(initData) {
    return async function () {
      try {
        return await api.signInWithInitData(initData);
      } catch (err) {
        if (err instanceof ApiError && SESSION_OVER_CODES.indexOf(err.code) >= 0) endSession();
        throw err;
      }
    };
  }

  async function enterWallet(user) {
    byId("who-name").textContent = user ? (user.first_name || user.username || "") : "";
    byId("sign-out").hidden = !state.config.dev;
    showScreen("wallet");
    startPolling();
    await Promise.all([loadBalances(), loadAssets(), loadActivity(), loadRial()]);
  }

  async function signInDev(event) {
    event.preventDefault();
    var id = byId("dev-telegram-id").value.trim();
    if (!/^\d{1,19}$/.test(id)) {
      byId("dev-signin-error").textContent = "Enter a numeric Telegram user id.";
      return;
    }
    try {
      var user = await api.signInDev(id);
      try { sessionStorage.setItem(DEV_ID_KEY, id); } catch (err) { /* memory only then */ }
      api.onUnauthorized(function () { return api.signInDev(id); });
      byId("dev-signin-error").textContent = "";
      await enterWallet(user);
    } catch (err) {
      byId("dev-signin-error").textContent = err.message;
    }
  }

  function wire() {
    ["deposit", "withdraw", "activity", "rial"].forEach(function (tab) {
      byId("tab-" + tab).addEventListener("click", function () { selectTab(tab); });
    });
    byId("refresh").addEventListener("click", function () { refreshAll(); loadRial(); });
    byId("copy-address").addEventListener("click", function () {
      if (state.chain && state.addresses[state.chain]) V.copyText(state.addresses[state.chain]);
    });
    document.addEventListener("click", function (event) {
      var target = event.target.closest && event.target.closest("[data-copy]");
      if (target) V.copyText(target.getAttribute("data-copy"));
    });
    byId("open-in-telegram").addEventListener("click", function (event) {
      event.preventDefault();
      T.openLink(byId("open-in-telegram").href);
    });
    byId("dev-signin-form").addEventListener("submit", signInDev);
    byId("sign-out").addEventListener("click", function () {
      api.signOut();
      try { sessionStorage.removeItem(DEV_ID_KEY); } catch (err) { /* nothing stored */ }
      showSignIn("");
    });
    withdraw = window.TellerWithdraw.mount({ api: api, balances: function () { return state.balances; }, onDone: refreshAll });
    rial = window.TellerRial.mount({ api: api, config: function () { return state.config; } });
  }

  async function boot() {
    T.start();
    wire();
    try { state.config = await api.config(); } catch (err) { state.config = { dev: false }; }
    byId("dev-badge").hidden = !state.config.dev;
    var initData = T.initData();
    var fail = function () {
      showSignIn("Your session has ended. Please sign in again.");
      throw new ApiError(401, "not_authenticated", "Please sign in again.");
    };
    try {
      if (initData) {
        api.onUnauthorized(telegramReauthenticator(initData));
        await enterWallet(await api.signInWithInitData(initData));
      } else if (state.config.dev && storedDevId() && api.hasToken()) {
        var devId = storedDevId();
        api.onUnauthorized(function () { return api.signInDev(devId); });
        await enterWallet(await api.get("/api/v1/me"));
      } else {
        api.onUnauthorized(fail);
        showSignIn("");
      }
    } catch (err) {
      if (initData && err instanceof ApiError && SESSION_OVER_CODES.indexOf(err.code) >= 0) endSession();
      else showSignIn(initData
        ? "We couldn't verify your Telegram sign-in. Close the wallet and open it again from the bot."
        : err.message);
    }
  }

  document.addEventListener("DOMContentLoaded", boot);
})();
