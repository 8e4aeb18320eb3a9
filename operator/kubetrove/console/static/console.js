// kubetrove console: the little script it needs (bundled; the pages work without it).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Pages whose database or backup is still changing reload themselves, unless the user is typing.
  const seconds = Number(document.body.dataset.refresh || 0);
  let typing = false;
  document.addEventListener("input", () => { typing = true; });
  if (seconds > 0) {
    setInterval(() => {
      const field = document.activeElement;
      const busy = typing || (field && ["INPUT", "SELECT", "TEXTAREA"].includes(field.tagName));
      if (!busy) window.location.reload();
    }, seconds * 1000);
  }

  // Delete: the button stays disabled until the name is typed exactly (the server checks it again).
  const confirm = document.getElementById("confirm");
  const button = document.getElementById("confirm-delete");
  if (confirm && button) {
    const check = () => { button.disabled = confirm.value !== confirm.dataset.expect; };
    confirm.addEventListener("input", check);
    check();
  }
});
