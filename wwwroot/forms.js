// Form fields that say in words what their pattern wants: the browser's own message for a
// pattern mismatch is only "Please match the requested format".
(() => {
  "use strict";
  function explain(input) {
    input.setCustomValidity(input.validity.patternMismatch ? input.dataset.patternMessage : "");
  }
  document.addEventListener("input", (e) => { if (e.target.matches?.("input[data-pattern-message]")) explain(e.target); });
  document.addEventListener("invalid", (e) => { if (e.target.matches?.("input[data-pattern-message]")) explain(e.target); }, true);
})();
