/*
 * The HTTP API client (window.TellerApi), per docs/API.md.
 *
 * - Every failure becomes an ApiError {status, code, message}: the API's own error body when there
 *   is one, a fixed human sentence otherwise. Callers show `message`, never a raw body.
 * - The bearer token lives in memory and in sessionStorage (this tab only). A 401 on any route but
 *   sign-in triggers a re-sign-in through the `reauthenticate` callback, then one retry with the
 *   same headers, so a retried withdrawal keeps its Idempotency-Key. All requests that fail while
 *   the token is the same share one re-sign-in (one promise in flight), so a refresh of five
 *   sections signs in once, not five times.
 */
(function () {
  "use strict";

  var TOKEN_KEY = "teller.token";
  var REQUEST_TIMEOUT_MS = 20000;
  var AUTH_PATH = "/api/v1/auth/telegram";

  function ApiError(status, code, message) {
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.message = message;
  }
  ApiError.prototype = Object.create(Error.prototype);

  var FALLBACK_MESSAGES = {
    0: "Can't reach the wallet server. Check your connection and try again.",
    401: "Your session has ended. Please sign in again.",
    403: "This action is not allowed for your account.",
    404: "Not found.",
    409: "This conflicts with an earlier request.",
    413: "That request is too large.",
    422: "Some of the values are not valid.",
    429: "Too many requests. Please wait a moment and try again.",
  };

  function fallbackMessage(status) {
    if (FALLBACK_MESSAGES[status]) return FALLBACK_MESSAGES[status];
    if (status >= 500) return "The service is temporarily unavailable. Please try again shortly.";
    return "Something went wrong. Please try again.";
  }

  function readToken() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (err) { return ""; }
  }

  function createClient() {
    var token = readToken();
    var reauthenticate = null;
    var reauthInFlight = null; // the one re-sign-in every 401'd caller waits for

    function setToken(value) {
      token = value || "";
      try {
        if (token) sessionStorage.setItem(TOKEN_KEY, token);
        else sessionStorage.removeItem(TOKEN_KEY);
      } catch (err) { /* storage may be disabled; memory is enough */ }
    }

    async function send(method, path, options) {
      var headers = Object.assign({ Accept: "application/json" }, options.headers || {});
      if (options.body !== undefined) headers["Content-Type"] = "application/json";
      if (token && path !== AUTH_PATH) headers.Authorization = "Bearer " + token;
      var controller = new AbortController();
      var timer = setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS);
      var response;
      try {
        response = await fetch(path, {
          method: method, headers: headers, signal: controller.signal, credentials: "same-origin",
          body: options.body === undefined ? undefined : JSON.stringify(options.body),
        });
      } catch (err) {
        throw new ApiError(0, "network_error", fallbackMessage(0));
      } finally {
        clearTimeout(timer);
      }
      var payload = null;
      try { payload = await response.json(); } catch (err) { payload = null; }
      if (response.ok) return payload || {};
      var error = payload && payload.error;
      var code = (error && typeof error.code === "string") ? error.code : "http_" + response.status;
      var message = (error && typeof error.message === "string" && error.message) ? error.message : fallbackMessage(response.status);
      throw new ApiError(response.status, code, message);
    }

    function signInAgain() {
      if (!reauthInFlight) {
        setToken("");
        reauthInFlight = Promise.resolve().then(reauthenticate).finally(function () { reauthInFlight = null; });
      }
      return reauthInFlight;
    }

    async function request(method, path, options) {
      options = options || {};
      var sentWith = token;
      try {
        return await send(method, path, options);
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 401 || path === AUTH_PATH || !reauthenticate) throw err;
        // Sign in again unless another caller already did since this request left (then just retry).
        // Throws when signing in again is not possible; every waiting caller gets that error.
        if (reauthInFlight || token === sentWith) await signInAgain();
        return send(method, path, options);
      }
    }

    async function signInWithInitData(initData) {
      var answer = await send("POST", AUTH_PATH, { body: { init_data: initData } });
      setToken(answer.token);
      return answer.user;
    }

    async function signInDev(telegramId) {
      var answer = await send("POST", AUTH_PATH, { headers: { "X-Telegram-Id": String(telegramId) } });
      setToken(answer.token);
      return answer.user;
    }

    return {
      hasToken: function () { return Boolean(token); },
      signOut: function () { setToken(""); },
      onUnauthorized: function (callback) { reauthenticate = callback; },
      signInWithInitData: signInWithInitData,
      signInDev: signInDev,
      get: function (path) { return request("GET", path); },
      post: function (path, body, headers) { return request("POST", path, { body: body, headers: headers }); },
      del: function (path) { return request("DELETE", path); },
      // Routes that need no token; a failure here means "assume the safe default".
      config: function () { return send("GET", "/api/v1/config", {}); },
    };
  }

  function newIdempotencyKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  window.TellerApi = { createClient: createClient, ApiError: ApiError, newIdempotencyKey: newIdempotencyKey };
})();
