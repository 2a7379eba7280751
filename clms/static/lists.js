// Progressive help for lists and forms; every page works without it.
// - a "choose every row" checkbox (data-select-all="NAME") ticks the checkboxes NAME of its form;
// - a provider list (select[data-filter-by]) shows only the providers offering the service chosen
//   in the select it names (each option lists its services in data-services; "*": every one).
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
    all.hidden = false;
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
  document.querySelectorAll("select[data-filter-by]").forEach(function (providers) {
    var service = document.getElementById(providers.getAttribute("data-filter-by"));
    if (!service) { return; }
    var apply = function () {
      var chosen = service.value;
      Array.prototype.forEach.call(providers.options, function (option) {
        var offers = (option.getAttribute("data-services") || "").split(" ");
        var fits = !option.value || !chosen || offers.indexOf("*") >= 0 || offers.indexOf(chosen) >= 0;
        option.hidden = !fits;
        option.disabled = !fits;
        if (!fits && option.selected) { providers.value = ""; }
      });
    };
    service.addEventListener("change", apply);
    apply();
  });
  document.querySelectorAll("[data-js-hide]").forEach(function (e) { e.hidden = true; });
})();
