/* The header's menus (base.html) are <details> elements: they open and close without this file.
   It only tells assistive technology the state in the ARIA attribute too, and closes an open
   menu with Escape or when the person clicks elsewhere. */
(function () {
  "use strict";
  var menus = document.querySelectorAll("header.top details");
  function sync(details) {
    var summary = details.querySelector(":scope > summary");
    if (summary) summary.setAttribute("aria-expanded", details.open ? "true" : "false");
  }
  menus.forEach(function (details) {
    sync(details);
    details.addEventListener("toggle", function () { sync(details); });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    menus.forEach(function (details) {
      if (!details.open) return;
      details.open = false;
      var summary = details.querySelector(":scope > summary");
      if (summary && details.contains(document.activeElement)) summary.focus();
    });
  });
  document.addEventListener("click", function (event) {
    menus.forEach(function (details) {
      if (details.open && !details.contains(event.target)) details.open = false;
    });
  });
})();
