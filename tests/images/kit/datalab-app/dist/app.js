// Ask the API what it is, as datalab's app does at start (GET /info, with the session cookie).
(function () {
  var api = window.DATALAB_CONFIG.VUE_APP_API_URL.replace(/\/+$/, "");
  document.getElementById("api").textContent = api;
  fetch(api + "/info", { credentials: "include" })
    .then(function (response) { return response.json(); })
    .then(function (info) {
      var attributes = (info.data && info.data.attributes) || {};
      document.getElementById("server").textContent =
        "datalab " + (attributes.server_version || "?") + " (" + (attributes.identifier_prefix || "?") + ")";
    })
    .catch(function (error) { document.getElementById("server").textContent = "unreachable: " + error; });
})();
