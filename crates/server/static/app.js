// Switchboard UI: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // The model list follows the chosen provider: only that provider's enabled models are
  // offered. Without JavaScript the select shows every provider's models, grouped.
  function followProvider() {
    var provider = document.getElementById("default-provider");
    var model = document.getElementById("default-model");
    if (!provider || !model) return;
    var groups = {};
    Array.prototype.forEach.call(model.querySelectorAll("optgroup"), function (group) {
      groups[group.getAttribute("data-provider")] = Array.prototype.map.call(
        group.querySelectorAll("option"),
        function (option) { return { value: option.value, selected: option.selected }; }
      );
    });
    function fill(keepSelection) {
      var options = groups[provider.value] || [];
      var chosen = keepSelection ? model.value : null;
      model.replaceChildren();
      options.forEach(function (item) {
        var option = document.createElement("option");
        option.value = item.value;
        option.textContent = item.value;
        option.selected = keepSelection && item.selected;
        model.appendChild(option);
      });
      if (chosen && !options.some(function (o) { return o.selected; })) model.selectedIndex = 0;
    }
    fill(true);
    provider.addEventListener("change", function () { fill(false); });
  }

  // Destructive forms ask first (data-confirm="question").
  function confirmForms() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-confirm]"), function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }

  followProvider();
  confirmForms();
})();
