// Progressive help for lists and forms; every page works without it.
// - a "choose every row" checkbox (data-select-all="NAME") ticks the checkboxes NAME of its form;
// - a form whose choice shapes the next one (form[data-autosubmit]: a service, then the providers
//   that deliver it) is sent as soon as a choice is made, and its button (data-js-hide) hides.
(function () {
  "use strict";
  document.querySelectorAll("input[data-select-all]").forEach(function (all) {
    var name = all.getAttribute("data-select-all");
    var form = all.form;
    if (!form) { return; }
    var boxes = function () {
      return Array.prototype.filter.call(form.elements, function (e) {
        return e.type === "checkbox" && e.name === name;
      });
    };
    (all.closest("label") || all).hidden = false;
    all.addEventListener("change", function () {
      boxes().forEach(function (b) { b.checked = all.checked; });
    });
    form.addEventListener("change", function (event) {
      if (event.target !== all && event.target.name === name) {
        var list = boxes();
        all.checked = list.length > 0 && list.every(function (b) { return b.checked; });
      }
    });
  });
  document.querySelectorAll("form[data-autosubmit] select").forEach(function (choice) {
    choice.addEventListener("change", function () {
      if (choice.value) { choice.form.submit(); }
    });
  });
  document.querySelectorAll("form[data-autosubmit] [data-js-hide]").forEach(function (e) {
    e.hidden = true;
  });
})();
