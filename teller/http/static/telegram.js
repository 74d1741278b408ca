/*
 * Telegram Mini App integration (window.TellerTelegram).
 *
 * The page never depends on Telegram's SDK being loadable: inside Telegram the init data and the
 * theme also arrive in the URL's fragment (#tgWebAppData=…&tgWebAppThemeParams=…), so sign-in works
 * even when telegram.org is unreachable.
 *
 * Init data signs the holder in as the user it names, so this script is careful where it takes it
 * from. A link such as https://wallet/#tgWebAppData=<someone else's init data> must not sign a plain
 * browser into that someone's wallet:
 * - it is read from the fragment only (never the query string, which also travels to the server in
 *   the request line), and only when Telegram is really the host (telegramIsHost below);
 * - every tgWebApp* parameter is taken out of the address bar as soon as this script runs (it is the
 *   first script of the page), before any request and before any other script can read it; the page
 *   keeps what it needs in memory, and for a reload inside Telegram in this tab's sessionStorage.
 */
(function () {
  "use strict";

  var SDK_URL = "https://telegram.org/js/telegram-web-app.js";
  var SDK_LOAD_TIMEOUT_MS = 3000;
  var LAUNCH_PARAM_RE = /^tgWebApp/;

  /*
   * Is a Telegram client hosting this page? Telegram talks to a Mini App through exactly one of three
   * transports, the ones its own SDK uses to post events: the mobile clients inject
   * window.TelegramWebviewProxy, the desktop clients window.external.notify, and the web clients
   * frame the page and exchange postMessage. A plain browser has none of them, and a page cannot be
   * framed by anyone but Telegram's web client: the server's CSP says frame-ancestors
   * https://web.telegram.org (teller/http/headers.py). So being framed is proof enough.
   *
   * What is NOT proof: window.Telegram.WebApp.initData being set. Telegram's SDK script fills it in
   * from the URL fragment in any browser, so it says no more than the crafted link itself. The SDK's
   * value is used only after this check has passed.
   */
  function telegramIsHost() {
    if (window.TelegramWebviewProxy && typeof window.TelegramWebviewProxy.postEvent === "function") return true;
    if (window.external && "notify" in window.external) return true;
    return window.parent !== window;
  }

  // Read the launch parameters from the fragment, then drop every tgWebApp* parameter from the URL
  // (fragment and query string) without a reload or a new history entry.
  function takeLaunchParams() {
    var url = new URL(window.location.href);
    var fragment = new URLSearchParams(url.hash.replace(/^#/, ""));
    var taken = { initData: fragment.get("tgWebAppData") || "", themeParams: fragment.get("tgWebAppThemeParams") || "" };
    var changed = false;
    [url.searchParams, fragment].forEach(function (params) {
      Array.from(params.keys()).forEach(function (key) {
        if (LAUNCH_PARAM_RE.test(key)) { params.delete(key); changed = true; }
      });
    });
    if (changed) {
      url.hash = fragment.toString();
      try { window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash); }
      catch (err) { window.location.hash = url.hash; } // no History API: at least overwrite the fragment
    }
    return taken;
  }

  // Telegram's "Reload page" reloads the address without the fragment this script dropped. The launch
  // parameters are kept for this tab alone (sessionStorage: one tab, one origin, gone with the tab, as
  // Telegram's own SDK keeps them) and read back only while a Telegram client hosts the page: a plain
  // browser never gets past telegramIsHost, and a link cannot write a tab's sessionStorage.
  var KEPT_LAUNCH_KEY = "teller.launch";

  function keptLaunch(taken, hosted) {
    if (!hosted) return taken;
    try {
      if (taken.initData) {
        window.sessionStorage.setItem(KEPT_LAUNCH_KEY, JSON.stringify(taken));
        return taken;
      }
      var kept = JSON.parse(window.sessionStorage.getItem(KEPT_LAUNCH_KEY) || "null");
      if (kept && typeof kept.initData === "string" && typeof kept.themeParams === "string") return kept;
    } catch (err) { /* storage refused or garbled: sign in as without it */ }
    return taken;
  }

  var hostIsTelegram = telegramIsHost();
  var launch = keptLaunch(takeLaunchParams(), hostIsTelegram);

  function webApp() {
    return (window.Telegram && window.Telegram.WebApp) || null;
  }

  // Raw init data (the signed query string the server validates), or "" unless Telegram hosts the page.
  function initData() {
    if (!hostIsTelegram) return "";
    var app = webApp();
    if (app && app.initData) return String(app.initData);
    return launch.initData;
  }

  function urlThemeParams() {
    if (!launch.themeParams) return null;
    try { return JSON.parse(launch.themeParams); } catch (err) { return null; }
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
    } else if (hostIsTelegram) {
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
