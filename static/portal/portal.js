/* GPUX Portal: small behaviours on top of the server-rendered pages; each page works without them. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // <form data-auto-submit>: a chosen filter (a select, a checkbox) applies at once; typed words apply on Enter.
  // The form's own submit button stays for browsers without JavaScript (class "no-js-only").
  document.addEventListener("change", function (event) {
    var field = event.target, form = field.form;
    if (form && form.hasAttribute("data-auto-submit") && field.name &&
        field.matches("select, input[type=checkbox], input[type=radio]")) {
      if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
    }
  });

  // <input data-slug-from="#id_name">: the slug follows the name typed in the other field (lower case, dashes)
  // until the person edits the slug themselves.
  function slugify(text, maxLength) {
    var slug = text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
    return maxLength ? slug.slice(0, maxLength).replace(/-+$/g, "") : slug;
  }
  function wireSlug(slug) {
    var source = document.querySelector(slug.getAttribute("data-slug-from"));
    if (!source) { return; }
    var max = parseInt(slug.getAttribute("maxlength") || "0", 10);
    var touched = slug.value !== "" && slug.value !== slugify(source.value, max);
    slug.addEventListener("input", function () { touched = slug.value !== ""; });
    source.addEventListener("input", function () {
      if (!touched) { slug.value = slugify(source.value, max); }
    });
  }
  function wireAll(root) {
    root.querySelectorAll("input[data-slug-from]").forEach(wireSlug);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { wireAll(document); });
  } else {
    wireAll(document);
  }
  document.addEventListener("htmx:load", function (event) { wireAll(event.target); });
})();
