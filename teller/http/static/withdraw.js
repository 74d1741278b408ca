/*
 * The withdrawal form (window.TellerWithdraw): review, then confirm and send.
 *
 * Idempotency: each new submission gets a fresh Idempotency-Key. Only when the previous attempt's
 * outcome is unknown (no answer, or a 5xx) and the user sends the very same request again is the
 * key reused, so the server can answer with the first withdrawal instead of making a second one.
 */
(function () {
  "use strict";

  var F = window.TellerFormat;
  var V = window.TellerViews;
  var ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;
  var FIELD_ERRORS = { invalid_address: "withdraw-to-error", invalid_amount: "withdraw-amount-error" };

  function byId(id) { return document.getElementById(id); }

  function mount(options) {
    var api = options.api;
    var form = byId("withdraw-form");
    var select = byId("withdraw-asset");
    var toInput = byId("withdraw-to");
    var amountInput = byId("withdraw-amount");
    var confirmBox = byId("withdraw-confirm");
    var reviewButton = byId("withdraw-review");
    var sendButton = byId("withdraw-send");
    var alertBox = byId("withdraw-alert");
    var success = byId("withdraw-success");
    var unknownOutcome = null; // {body, key} of an attempt whose result we never learned
    var assets = [];

    function selected() {
      return assets.find(function (a) { return a.asset + "|" + a.chain === select.value; }) || null;
    }

    function balanceOf(asset) {
      return options.balances().find(function (b) { return b.asset === asset.asset && b.chain === asset.chain; }) || null;
    }

    function clearErrors() {
      byId("withdraw-to-error").textContent = "";
      byId("withdraw-amount-error").textContent = "";
      V.showError(alertBox, "");
    }

    function hideConfirm() {
      confirmBox.hidden = true;
      reviewButton.hidden = false;
    }

    function update() {
      var asset = selected();
      hideConfirm();
      if (!asset) return;
      var balance = balanceOf(asset);
      byId("withdraw-unit").textContent = asset.asset;
      byId("withdraw-available").textContent = "Available: " + F.amount(balance ? balance.available : "0") + " " + asset.asset;
      byId("withdraw-fee").textContent = F.amount(asset.withdrawal_fee) + " " + asset.asset;
      byId("withdraw-min").textContent = F.amount(asset.min_withdrawal) + " " + asset.asset;
      var amount = F.toMinor(amountInput.value, asset.decimals);
      var fee = F.toMinor(asset.withdrawal_fee, asset.decimals) || 0n;
      byId("withdraw-total").textContent = amount && amount > 0n
        ? F.amount(F.fromMinor(amount + fee, asset.decimals)) + " " + asset.asset : "—";
    }

    function setAssets(all) {
      var previous = select.value;
      assets = all.filter(function (a) { return a.chain; });
      V.clear(select);
      assets.forEach(function (a) {
        select.appendChild(V.h("option", { value: a.asset + "|" + a.chain, text: a.asset + " · " + F.chainName(a.chain) }));
      });
      if (previous && assets.some(function (a) { return a.asset + "|" + a.chain === previous; })) select.value = previous;
      update();
    }

    function validate(asset) {
      var ok = true;
      if (!ADDRESS_RE.test(toInput.value.trim())) {
        byId("withdraw-to-error").textContent = "Enter an address: 0x followed by 40 hexadecimal characters.";
        ok = false;
      }
      var amount = F.toMinor(amountInput.value, asset.decimals);
      var minimum = F.toMinor(asset.min_withdrawal, asset.decimals) || 0n;
      if (amount === null || amount <= 0n) {
        byId("withdraw-amount-error").textContent = "Enter an amount above 0 with at most " + asset.decimals + " decimals.";
        ok = false;
      } else if (amount < minimum) {
        byId("withdraw-amount-error").textContent = "The minimum withdrawal is " + F.amount(asset.min_withdrawal) + " " + asset.asset + ".";
        ok = false;
      }
      return ok;
    }

    function review(event) {
      event.preventDefault();
      clearErrors();
      success.hidden = true;
      var asset = selected();
      if (!asset || !validate(asset)) return;
      var text = byId("withdraw-confirm-text");
      V.clear(text);
      text.appendChild(V.h("strong", { className: "num", text: "Send " + F.amount(amountInput.value.trim()) + " " + asset.asset +
        " on " + F.chainName(asset.chain) + " to" }));
      text.appendChild(V.h("span", { className: "confirm-address mono", text: toInput.value.trim() }));
      text.appendChild(V.h("span", { className: "hint", text: "Network fee " + F.amount(asset.withdrawal_fee) + " " +
        asset.asset + ". Check the address: a withdrawal cannot be reversed." }));
      confirmBox.hidden = false;
      reviewButton.hidden = true;
      sendButton.focus();
    }

    async function send() {
      var asset = selected();
      if (!asset) return;
      var body = { chain: asset.chain, asset: asset.asset, to: toInput.value.trim(), amount: amountInput.value.trim() };
      var fingerprint = JSON.stringify(body);
      var key = unknownOutcome && unknownOutcome.body === fingerprint ? unknownOutcome.key : window.TellerApi.newIdempotencyKey();
      unknownOutcome = { body: fingerprint, key: key };
      sendButton.disabled = true;
      sendButton.textContent = "Sending…";
      clearErrors();
      try {
        var withdrawal = await api.post("/api/v1/withdrawals", body, { "Idempotency-Key": key });
        unknownOutcome = null;
        form.reset();
        hideConfirm();
        success.textContent = "Withdrawal of " + F.amount(withdrawal.amount || body.amount) + " " + body.asset +
          " requested. Status: " + (withdrawal.status || "pending") + ". Follow it under Activity.";
        success.hidden = false;
        window.TellerTelegram.haptic("success");
        options.onDone();
      } catch (err) {
        if (err.status && err.status < 500) unknownOutcome = null; // a definite answer: nothing was sent
        var fieldId = FIELD_ERRORS[err.code];
        if (fieldId) { byId(fieldId).textContent = err.message; hideConfirm(); }
        else V.showError(alertBox, err.status === 0 || err.status >= 500
          ? err.message + " Sending again is safe: it will not be sent twice."
          : err.message);
        window.TellerTelegram.haptic("error");
      } finally {
        sendButton.disabled = false;
        sendButton.textContent = "Confirm and send";
        update();
        if (!alertBox.hidden) { confirmBox.hidden = false; reviewButton.hidden = true; }
      }
    }

    function max() {
      var asset = selected();
      var balance = asset && balanceOf(asset);
      if (!balance) return;
      var available = F.toMinor(balance.available, asset.decimals) || 0n;
      var fee = F.toMinor(asset.withdrawal_fee, asset.decimals) || 0n;
      amountInput.value = F.fromMinor(available > fee ? available - fee : 0n, asset.decimals);
      update();
    }

    form.addEventListener("submit", review);
    select.addEventListener("change", function () { clearErrors(); update(); });
    amountInput.addEventListener("input", update);
    toInput.addEventListener("input", hideConfirm);
    byId("withdraw-edit").addEventListener("click", function () { hideConfirm(); toInput.focus(); });
    byId("withdraw-max").addEventListener("click", max);
    sendButton.addEventListener("click", send);
    return { setAssets: setAssets, refresh: update };
  }

  window.TellerWithdraw = { mount: mount };
})();
