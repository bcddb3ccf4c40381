// Gatehouse Console: progressive behaviour for server-rendered pages. Every page works
// without it; with it, deletes ask first, JSON editors refuse invalid JSON before posting,
// permission lists filter, secrets reveal on request and the code editor numbers its lines.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Confirmation before a destructive post.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (e) => {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  }

  // JSON editors: the message names the line and column of the first error.
  for (const area of document.querySelectorAll("textarea[data-json]")) {
    const out = document.getElementById(area.id + "-error");
    const check = () => {
      const text = area.value.trim();
      if (text === "") { out.textContent = ""; area.removeAttribute("aria-invalid"); return true; }
      try {
        const v = JSON.parse(text);
        if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("must be a JSON object");
        out.textContent = "";
        area.removeAttribute("aria-invalid");
        return true;
      } catch (err) {
        out.textContent = area.dataset.json + ": " + describe(err, text);
        area.setAttribute("aria-invalid", "true");
        return false;
      }
    };
    area.addEventListener("input", check);
    area.form.addEventListener("submit", (e) => {
      if (!check()) { e.preventDefault(); area.focus(); }
    });
  }

  // Permission filter, Select all and None.
  for (const input of document.querySelectorAll("input[data-filter]")) {
    const list = document.getElementById(input.dataset.filter);
    input.addEventListener("input", () => {
      const needle = input.value.trim().toLowerCase();
      for (const p of list.querySelectorAll(".perm")) p.hidden = needle !== "" && !p.dataset.perm.toLowerCase().includes(needle);
    });
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") e.preventDefault(); });
  }
  const mark = (id, on) => {
    for (const p of document.getElementById(id).querySelectorAll(".perm")) {
      if (!p.hidden) p.querySelector("input").checked = on;
    }
  };
  for (const b of document.querySelectorAll("button[data-select-all]")) b.addEventListener("click", () => mark(b.dataset.selectAll, true));
  for (const b of document.querySelectorAll("button[data-select-none]")) b.addEventListener("click", () => mark(b.dataset.selectNone, false));

  // Reveal a secret shown once.
  for (const b of document.querySelectorAll("button[data-reveal]")) {
    b.addEventListener("click", () => {
      const field = document.getElementById(b.dataset.reveal);
      const hidden = field.type === "password";
      field.type = hidden ? "text" : "password";
      b.textContent = hidden ? "Hide" : "Reveal";
    });
  }

  // The code editor's line numbers, with the failed build's line marked.
  for (const area of document.querySelectorAll("textarea[data-code]")) {
    const gutter = document.getElementById(area.id + "-lines");
    const bad = parseInt(area.dataset.errorLine || "0", 10);
    const draw = () => {
      const n = area.value.split("\n").length;
      gutter.textContent = "";
      for (let i = 1; i <= n; i++) {
        const line = document.createElement("span");
        line.textContent = i + "\n";
        if (i === bad) line.className = "bad";
        gutter.appendChild(line);
      }
    };
    area.addEventListener("input", draw);
    area.addEventListener("scroll", () => { gutter.scrollTop = area.scrollTop; });
    draw();
  }
});

// "Unexpected token } in JSON at position 12" → "line 2, column 4: Unexpected token …".
function describe(err, text) {
  const m = /position (\d+)/.exec(err.message);
  if (!m) return err.message;
  const pos = parseInt(m[1], 10);
  const before = text.slice(0, pos).split("\n");
  return "line " + before.length + ", column " + (before[before.length - 1].length + 1) + ": " + err.message;
}
