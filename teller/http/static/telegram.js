/*
 * Telegram Mini App integration (window.TellerTelegram).
 *
 * The page never depends on Telegram's SDK being loadable: inside Telegram the init data and the
 * theme also arrive in the URL (#tgWebAppData=…&tgWebAppThemeParams=…), so sign-in works even when
 * telegram.org is unreachable. When the SDK object is present (Telegram's script, or a test's fake
 * injected before the page runs) it is preferred.
 */
(function () {
  "use strict";

  var SDK_URL = "https://telegram.org/js/telegram-web-app.js";
  var SDK_LOAD_TIMEOUT_MS = 3000;

  function urlParams() {
    var merged = new URLSearchParams(window.location.search);
    new URLSearchParams(window.location.hash.replace(/^#/, "")).forEach(function (value, key) {
      merged.set(key, value);
    });
    return merged;
  }

  function webApp() {
    return (window.Telegram && window.Telegram.WebApp) || null;
  }

  // Raw init data (the signed query string the server validates), or "" outside Telegram.
  function initData() {
    var app = webApp();
    if (app && app.initData) return String(app.initData);
    return urlParams().get("tgWebAppData") || "";
  }

  function urlThemeParams() {
    var raw = urlParams().get("tgWebAppThemeParams");
    if (!raw) return null;
    try { return JSON.parse(raw); } catch (err) { return null; }
  }

  function isDark(hex) {
    var m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(String(hex || ""));
    if (!m) return null;
    var luminance = 0.2126 * parseInt(m[1], 16) + 0.7152 * parseInt(m[2], 16) + 0.0722 * parseInt(m[3], 16);
    return luminance < 128;
  }

  // Telegram's theme -> --tg-theme-* CSS variables (what Telegram's SDK itself sets), plus a
  // data-scheme attribute so the defaults for colours Telegram did not send match light or dark.
  function applyTheme() {
    var app = webApp();
    var params = (app && app.themeParams && Object.keys(app.themeParams).length) ? app.themeParams : urlThemeParams();
    var root = document.documentElement;
    if (params) {
      Object.keys(params).forEach(function (key) {
        if (/^#[0-9a-f]{3,8}$/i.test(String(params[key]))) {
          root.style.setProperty("--tg-theme-" + key.replace(/_/g, "-"), params[key]);
        }
      });
    }
    var scheme = app && app.colorScheme;
    if (!scheme && params && params.bg_color) scheme = isDark(params.bg_color) ? "dark" : "light";
    if (scheme === "dark" || scheme === "light") root.setAttribute("data-scheme", scheme);
  }

  function postEvent(eventType) {
    // Telegram's own transport for clients whose SDK did not load (mobile, desktop, then web).
    try {
      if (window.TelegramWebviewProxy) window.TelegramWebviewProxy.postEvent(eventType, "");
      else if (window.external && "notify" in window.external) window.external.notify(JSON.stringify({ eventType: eventType, eventData: "" }));
      else if (window.parent !== window) window.parent.postMessage(JSON.stringify({ eventType: eventType, eventData: "" }), "https://web.telegram.org");
    } catch (err) { /* not inside Telegram after all */ }
  }

  function loadSdkInBackground() {
    var script = document.createElement("script");
    var timer = setTimeout(function () { script.remove(); }, SDK_LOAD_TIMEOUT_MS);
    script.src = SDK_URL;
    script.async = true;
    script.onload = function () { clearTimeout(timer); start(); };
    script.onerror = function () { clearTimeout(timer); };
    document.head.appendChild(script);
  }

  var started = false;
  function start() {
    applyTheme();
    var app = webApp();
    if (app) {
      if (started) return;
      started = true;
      if (typeof app.ready === "function") app.ready();
      if (typeof app.expand === "function") app.expand();
      if (typeof app.onEvent === "function") app.onEvent("themeChanged", applyTheme);
    } else if (urlParams().get("tgWebAppData")) {
      postEvent("web_app_ready");
      postEvent("web_app_expand");
      loadSdkInBackground();
    }
  }

  function openLink(url) {
    var app = webApp();
    if (app && typeof app.openTelegramLink === "function" && /^https:\/\/t\.me\//.test(url)) app.openTelegramLink(url);
    else window.open(url, "_blank", "noopener");
  }

  function haptic(kind) {
    var app = webApp();
    try {
      if (app && app.HapticFeedback) app.HapticFeedback.notificationOccurred(kind);
    } catch (err) { /* haptics are a nicety */ }
  }

  window.TellerTelegram = {
    start: start, initData: initData, webApp: webApp, openLink: openLink, haptic: haptic,
  };
})();
