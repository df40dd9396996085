// Renders the OpenAPI description served by this app (no external Swagger assets).
"use strict";
(async () => {
  const spec = await (await fetch("/openapi.json")).json();
  const root = document.getElementById("ops");
  root.replaceChildren();
  const resolve = (s) => (s && s.$ref ? spec.components.schemas[s.$ref.split("/").pop()] : s);
  const typeOf = (s) => {
    s = resolve(s) || {};
    if (s.anyOf) return s.anyOf.map(typeOf).join(" | ");
    if (s.oneOf) return s.oneOf.map((x) => (resolve(x).title || typeOf(x))).join(" | ");
    return s.type || s.title || "object";
  };
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const div = document.createElement("div");
      div.className = "op";
      const h = document.createElement("div");
      h.innerHTML = `<span class="method"></span><code></code> <span class="muted"></span>`;
      h.children[0].textContent = method;
      h.children[1].textContent = path;
      h.children[2].textContent = op.summary || "";
      div.appendChild(h);
      const params = op.parameters || [];
      if (params.length) {
        const t = document.createElement("table");
        t.innerHTML = "<tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>";
        for (const p of params) {
          const tr = document.createElement("tr");
          const s = p.schema || {};
          const bounds = [s.minimum !== undefined ? `≥ ${s.minimum}` : "", s.maximum !== undefined ? `≤ ${s.maximum}` : ""]
            .filter(Boolean).join(", ");
          for (const v of [p.name + (p.required ? " *" : ""), p.in, typeOf(s) + (bounds ? ` (${bounds})` : ""),
                           p.description || (s.default !== undefined ? `default ${s.default}` : "")]) {
            const td = document.createElement("td");
            td.textContent = v;
            tr.appendChild(td);
          }
          t.appendChild(tr);
        }
        div.appendChild(t);
      }
      const body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
      if (body) {
        const pre = document.createElement("pre");
        pre.textContent = "body: " + JSON.stringify(body.schema, null, 1).slice(0, 1500);
        div.appendChild(pre);
      }
      root.appendChild(div);
    }
  }
})();
