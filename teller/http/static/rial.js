/*
 * The Rial tab (window.TellerRial): the identity steps, then cards, IBANs, where to send rials and
 * what arrived, per the identity/IBAN contract (GET/POST /api/v1/identity…, /api/v1/cards, /api/v1/ibans).
 *
 * 1. The phone number comes from Telegram, never typed: WebApp.requestContact's callback gives
 *    (shared, {status, response}); `response` is the signed contact string the server checks like
 *    init data. Older clients give no `response`: the bot got the contact, so the identity is read
 *    again a bounded number of times. Outside Telegram in dev mode, POST /dev/contact signs one.
 * 2. The national code accepts Persian and Arabic digits and is checked (check digit) before sending.
 * 3. Only a verified identity sees cards, IBANs, the deposit account and rial deposits.
 * Every value from the API lands in textContent (TellerViews.h), never in markup.
 */
(function () {
  "use strict";

  var F = window.TellerFormat;
  var V = window.TellerViews;
  var T = window.TellerTelegram;
  var CONTACT_POLL_MAX = 8;
  var CONTACT_POLL_INTERVAL_MS = 1500;
  var PROVIDER_DOWN = "The bank's verification service is not answering right now. Nothing was saved; please try again in a few minutes.";
  // Each error code of the contract, in words a user can act on. Unknown codes show the server's message.
  var ERROR_WORDS = {
    invalid_contact: "Telegram's confirmation of your phone number could not be checked. Please tap Share phone number again.",
    foreign_contact: "That is not the phone number of your own Telegram account. Share your own number.",
    identity_verified: "Your identity is already verified, so the phone number can no longer change.",
    invalid_national_code: "That is not a valid national code. It has 10 digits; copy it from your national card.",
    identity_mismatch: "This national code does not belong to the owner of the phone number you shared. The SIM card must be registered in your own name.",
    contact_required: "Share your phone number first (step 1).",
    national_code_taken: "This national code is already verified on another wallet account. If it is yours, contact support.",
    provider_unavailable: PROVIDER_DOWN,
    provider_limit: "Too many verification attempts for now. Please try again later today.",
    identity_required: "Verify your identity first: share your phone number and enter your national code.",
    invalid_card: "That card number is not valid. Enter the 16 digits printed on the card.",
    card_owner_mismatch: "This card is not in your name. You can only add cards that belong to your national code.",
    card_exists: "This card is registered on another wallet account. It can be added here only after it is removed there.",
    invalid_iban: "That IBAN is not valid. It is IR followed by 24 digits; copy it from your bank's app.",
    iban_owner_mismatch: "This IBAN's account is not in your name. You can only add accounts that belong to your national code.",
    iban_exists: "This IBAN is registered on another wallet account. It can be added here only after it is removed there.",
  };
  var KINDS = {
    card: { path: "/api/v1/cards", listKey: "cards", noun: "card", added: "Card added" },
    iban: { path: "/api/v1/ibans", listKey: "ibans", noun: "IBAN", added: "IBAN added" },
  };

  function byId(id) { return document.getElementById(id); }

  // Persian (۰-۹) and Arabic-Indic (٠-٩) digits to ASCII; the server accepts both too.
  function latinDigits(text) {
    return String(text).replace(/[\u06F0-\u06F9\u0660-\u0669]/g, function (d) {
      var code = d.charCodeAt(0);
      return String(code - (code >= 0x06F0 ? 0x06F0 : 0x0660));
    });
  }

  // Spaces, dashes and the direction marks that copying from Persian text brings along go; letters stay (and fail).
  var SEPARATORS_RE = /[\s\u200e\u200f-]/g;

  function normalNationalCode(text) {
    return latinDigits(text).replace(SEPARATORS_RE, "");
  }

  function nationalCodeValid(code) {
    if (!/^\d{10}$/.test(code)) return false;
    var sum = 0;
    for (var i = 0; i < 9; i++) sum += Number(code.charAt(i)) * (10 - i);
    var rest = sum % 11;
    return Number(code.charAt(9)) === (rest < 2 ? rest : 11 - rest);
  }

  // "ir 06 ۱۷…" -> "IR0617…"; 24 bare digits get their "IR".
  function normalIban(text) {
    var compact = latinDigits(text).replace(SEPARATORS_RE, "").toUpperCase();
    return /^\d{24}$/.test(compact) ? "IR" + compact : compact;
  }

  function ibanValid(iban) {
    if (!/^IR\d{24}$/.test(iban)) return false;
    return BigInt(iban.slice(4) + "1827" + iban.slice(2, 4)) % 97n === 1n; // ISO 13616: I=18, R=27
  }

  function words(err) {
    if (err.code === "provider_unavailable" || (err.status >= 502 && err.status <= 504)) return PROVIDER_DOWN;
    return ERROR_WORDS[err.code] || err.message;
  }

  function delay(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function mount(options) {
    var api = options.api;
    var identity = { status: "none" };
    var pollRun = 0; // a newer share or load stops an older poll

    function setNote(text) { byId("contact-note").textContent = text || ""; byId("contact-note").hidden = !text; }
    function setError(id, text) { byId(id).textContent = text || ""; }

    function stepState(step, state) {
      var el = byId(step);
      el.setAttribute("data-state", state);
      el.querySelector(".step-mark").textContent = state === "done" ? "✓" : step === "step-contact" ? "1" : "2";
    }

    function outsideTelegramInDev() {
      return Boolean(options.config().dev) && !T.webApp() && !T.initData();
    }

    function renderIdentity(next) {
      identity = next || { status: "none" };
      var verified = identity.status === "verified";
      var shared = identity.status === "contact_shared";
      var status = verified || shared ? identity.status : "none"; // an unknown status counts as nothing shared
      var badge = byId("identity-badge");
      V.clear(badge);
      badge.appendChild(V.h("span", { className: "badge " + (verified ? "ok" : "warn"), "data-status": status,
        text: verified ? "Verified" : "Not verified" }));
      byId("identity-intro").hidden = verified;
      stepState("step-contact", status === "none" ? "current" : "done");
      stepState("step-national", verified ? "done" : shared ? "current" : "todo");
      byId("contact-status").textContent = status !== "none"
        ? "Shared: " + (identity.mobile_masked || "your Telegram number")
        : outsideTelegramInDev() ? "Development mode: the server shares its seeded test person's number (see its log)."
          : "Telegram shares your account's number with the wallet; you never type it.";
      var share = byId("contact-share");
      share.hidden = verified;
      share.className = shared ? "link-button" : "button primary";
      share.textContent = shared ? "Share again" : "Share phone number";
      byId("national-form").hidden = !shared;
      byId("national-status").textContent = verified
        ? "Verified: " + (identity.national_code_masked || "") + ". Your rials can now be credited."
        : "The 10 digits on your national card. Persian digits are fine.";
      if (status !== "none") setNote("");
      ["irt-info-section", "cards-section", "ibans-section", "irt-deposits-section"].forEach(function (id) {
        if (!verified) byId(id).hidden = true;
      });
    }

    // --- step 1: the phone number ---
    async function postContact(signed) {
      try {
        renderIdentity(await api.post("/api/v1/identity/contact", { contact: signed }));
        byId("national-code").focus();
      } catch (err) {
        setError("contact-error", words(err));
      }
    }

    async function waitForBotContact(run) {
      for (var i = 0; i < CONTACT_POLL_MAX; i++) {
        await delay(CONTACT_POLL_INTERVAL_MS);
        if (run !== pollRun) return;
        try {
          var next = await api.get("/api/v1/identity");
          if (run !== pollRun) return;
          if (next.status !== "none") { renderIdentity(next); return; }
        } catch (err) {
          if (err.status === 401) return; // signed out: nothing more to wait for
        }
      }
      setNote("");
      setError("contact-error", "Your phone number has not arrived yet. Open the chat with the bot, send your contact there, then tap Share phone number again.");
    }

    function onContact(shared, result) {
      if (!shared) {
        setError("contact-error", "You did not share your phone number. It is needed to verify your identity; tap the button and choose Share.");
        return;
      }
      var signed = result && typeof result.response === "string" ? result.response : "";
      if (signed) { postContact(signed); return; }
      setNote("The bot received your contact. Checking…");
      waitForBotContact(++pollRun);
    }

    function askTheBot() {
      setNote("This Telegram app cannot share your number from here. Send your contact to the bot in its chat (attach, then Contact); this page will notice.");
      waitForBotContact(pollRun);
    }

    async function shareContact() {
      setError("contact-error", "");
      setNote("");
      pollRun++;
      var app = T.webApp();
      if (app && typeof app.requestContact === "function") {
        try {
          app.requestContact(onContact);
        } catch (err) { // WebAppMethodUnsupported: Telegram older than Bot API 6.9
          askTheBot();
        }
        return;
      }
      if (T.initData()) { askTheBot(); return; } // inside Telegram, but its SDK did not load
      if (!options.config().dev) {
        setError("contact-error", "Open the wallet from Telegram to share your phone number.");
        return;
      }
      try { // dev mode outside Telegram: the server signs the seeded dev person's contact
        var answer = await api.post("/dev/contact", {});
        await postContact(answer.contact);
      } catch (err) {
        setError("contact-error", words(err));
      }
    }

    // --- step 2: the national code ---
    async function submitNationalCode(event) {
      event.preventDefault();
      var code = normalNationalCode(byId("national-code").value);
      setError("national-error", "");
      if (!nationalCodeValid(code)) { setError("national-error", ERROR_WORDS.invalid_national_code); return; }
      var button = byId("national-submit");
      button.disabled = true;
      button.textContent = "Verifying…";
      try {
        renderIdentity(await api.post("/api/v1/identity/national-code", { national_code: code }));
        byId("national-code").value = "";
        T.haptic("success");
        if (identity.status === "verified") await loadVerified();
      } catch (err) {
        setError("national-error", words(err));
        T.haptic("error");
      } finally {
        button.disabled = false;
        button.textContent = "Verify";
      }
    }

    // --- cards and IBANs ---
    function itemRow(kind, item) {
      var main = kind === "card"
        ? [V.h("strong", { className: "num mono", text: F.card(item.card_masked) }),
           V.h("span", { className: "hint", text: [item.bank, item.owner_name].filter(Boolean).join(" · ") }),
           item.iban ? V.h("span", { className: "hint mono", text: F.iban(item.iban) }) : null]
        : [V.h("strong", { className: "num mono", text: F.iban(item.iban) }),
           V.h("span", { className: "hint", text: [item.bank, item.owner_name].filter(Boolean).join(" · ") })];
      // A card or IBAN registered before owners were checked is never matched until its owner check runs.
      if (item.status === "pending") {
        main.push(V.h("span", { className: "hint pending-hint",
          text: "Add this " + KINDS[kind].noun + " again to verify it is yours; until then payments from it are not credited." }));
      }
      var remove = V.h("button", { type: "button", className: "link-button remove", text: "Remove" });
      var confirm = V.h("div", { className: "confirm remove-confirm", hidden: true },
        V.h("p", { text: "Remove this " + KINDS[kind].noun + "? Payments from it will no longer be credited to you." }),
        V.h("div", { className: "button-row" },
          V.h("button", { type: "button", className: "button secondary keep", text: "Keep" }),
          V.h("button", { type: "button", className: "button danger confirm-remove", text: "Remove" })),
        V.h("span", { className: "field-error remove-error", role: "alert" }));
      var row = V.h("li", { className: "bank-card", "data-id": item.id, "data-kind": kind },
        V.h.apply(null, ["span", { className: "bank-card-main" }].concat(main)),
        V.h("span", { className: "bank-card-side" }, V.badge(item.status), remove),
        confirm);
      remove.addEventListener("click", function () { confirm.hidden = false; remove.hidden = true; });
      confirm.querySelector(".keep").addEventListener("click", function () { confirm.hidden = true; remove.hidden = false; });
      confirm.querySelector(".confirm-remove").addEventListener("click", function (event) { removeItem(kind, item, confirm, event.target); });
      return row;
    }

    function renderItems(kind, items) {
      var list = byId(kind + "-list");
      V.clear(list);
      items.forEach(function (item) { list.appendChild(itemRow(kind, item)); });
      byId(kind + "s-empty").hidden = items.length > 0;
    }

    async function removeItem(kind, item, confirm, button) {
      var errorEl = confirm.querySelector(".remove-error");
      button.disabled = true;
      errorEl.textContent = "";
      try {
        await api.del(KINDS[kind].path + "/" + encodeURIComponent(item.id));
        V.toast(kind === "card" ? "Card removed" : "IBAN removed");
      } catch (err) {
        if (err.status !== 404) { errorEl.textContent = words(err); button.disabled = false; return; }
      }
      await loadList(kind); // a 404 means it is gone already: show the list as it is
    }

    async function addItem(kind, event) {
      event.preventDefault();
      var input = byId(kind + "-number");
      var value = kind === "card" ? latinDigits(input.value).replace(/\D/g, "") : normalIban(input.value);
      var valid = kind === "card" ? F.luhnValid(value) : ibanValid(value);
      setError(kind + "-error", "");
      if (!valid) { setError(kind + "-error", ERROR_WORDS["invalid_" + kind]); return; }
      var button = byId(kind + "-add");
      button.disabled = true;
      try {
        var body = kind === "card" ? { card_number: value } : { iban: value };
        var existing = byId(kind + "-list").children.length;
        await api.post(KINDS[kind].path, body);
        input.value = "";
        await loadList(kind);
        V.toast(byId(kind + "-list").children.length > existing ? KINDS[kind].added : "Already on your account");
      } catch (err) {
        setError(kind + "-error", words(err));
      } finally {
        button.disabled = false;
      }
    }

    async function loadList(kind) {
      var section = byId(kind + "s-section");
      try {
        var answer = await api.get(KINDS[kind].path);
        renderItems(kind, answer[KINDS[kind].listKey] || []);
        section.hidden = false;
      } catch (err) {
        section.hidden = true;
      }
    }

    // --- where to send rials, and what arrived (amounts are tomans from the API) ---
    function depositRow(d) {
      var from = d.source_card_masked ? "From card " + F.card(d.source_card_masked)
        : d.source_iban ? "From " + F.iban(d.source_iban) : "Bank transfer";
      return V.h("li", { className: "activity-row", "data-id": d.id },
        V.h("span", { className: "activity-icon in", "aria-hidden": "true", text: "↓" }),
        V.h("span", { className: "activity-main" },
          V.h("strong", { text: "Rial deposit" }),
          V.h("span", { className: "hint wrap", text: from }),
          V.h("span", { className: "hint wrap", text: [F.dateTime(d.created_at), d.bank_reference ? "Ref " + d.bank_reference : ""]
            .filter(Boolean).join(" · ") })),
        V.h("span", { className: "activity-side" },
          V.h("strong", { className: "num in-text", text: "+" + F.amount(d.amount) + " tomans" }),
          V.badge(d.status)));
    }

    async function loadDeposits() {
      try {
        var answer = await api.get("/api/v1/irt/deposits");
        var list = byId("irt-deposit-list");
        V.clear(list);
        (answer.deposits || []).forEach(function (d) { list.appendChild(depositRow(d)); });
        byId("irt-deposits-empty").hidden = list.children.length > 0;
        byId("irt-deposits-section").hidden = false;
      } catch (err) {
        byId("irt-deposits-section").hidden = true;
      }
    }

    async function loadInfo() {
      try {
        V.renderIrtInfo(byId("irt-info"), await api.get("/api/v1/irt/deposit-info"));
        byId("irt-info-section").hidden = false;
      } catch (err) {
        byId("irt-info-section").hidden = true;
      }
    }

    function loadVerified() {
      return Promise.all([loadInfo(), loadList("card"), loadList("iban"), loadDeposits()]);
    }

    // Whether the tab has anything to show: false when the identity route fails (IRT not set up here).
    async function load() {
      var next;
      try {
        next = await api.get("/api/v1/identity");
      } catch (err) {
        return false;
      }
      if (next.status !== identity.status) { // another user signed in, or the state moved on: old messages no longer apply
        pollRun++;
        setNote("");
        ["contact-error", "national-error", "card-error", "iban-error"].forEach(function (id) { setError(id, ""); });
      }
      renderIdentity(next);
      if (next.status === "verified") await loadVerified();
      return true;
    }

    function formatAs(input, tidy) {
      input.addEventListener("input", function () { input.value = tidy(input.value); });
    }

    byId("contact-share").addEventListener("click", shareContact);
    byId("national-form").addEventListener("submit", submitNationalCode);
    byId("card-form").addEventListener("submit", function (event) { addItem("card", event); });
    byId("iban-form").addEventListener("submit", function (event) { addItem("iban", event); });
    formatAs(byId("card-number"), function (v) {
      return latinDigits(v).replace(/\D/g, "").slice(0, 16).replace(/(.{4})(?=.)/g, "$1 ");
    });
    formatAs(byId("iban-number"), function (v) {
      return latinDigits(v).replace(/[^0-9a-z]/gi, "").toUpperCase().slice(0, 26).replace(/(.{4})(?=.)/g, "$1 ");
    });
    return { load: load };
  }

  window.TellerRial = {
    mount: mount, normalNationalCode: normalNationalCode, nationalCodeValid: nationalCodeValid,
    normalIban: normalIban, ibanValid: ibanValid,
  };
})();
