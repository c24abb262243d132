// The catalog browser's front end (anywidget ES module, plain JS, no build step).
// It only draws the model's traits and sends clicks; filtering, prefetch and
// preview run in the kernel (eurec4a_nt/jupyter/browser.py).

const STATE_LABEL = { here: "here", partly: "partly here", remote: "only remote", pending: "pending",
  arriving: "arriving" };
const COLUMNS = ["name", "topics", "size", "published", "held here", ""];

function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function bar(held, needed) {
  const share = needed ? Math.min(1, held / needed) : 0;
  return h("span", { class: "nt-bar", title: `${held} of ${needed} objects here` },
    h("span", { class: "nt-bar-fill", style: `width: ${(100 * share).toFixed(1)}%` }));
}

function when(published) {
  return (published || "").replace("T", " ").slice(0, 16);
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

function render({ model, el }) {
  el.classList.add("nt-browser");
  const collapsed = new Set();
  const listeners = [];
  const on = (events, fn) => {
    for (const event of events.split(" ")) { model.on(event, fn); listeners.push([event, fn]); }
  };
  const set = (key, value) => { model.set(key, value); model.save_changes(); };

  const title = h("span", { class: "nt-title" });
  const info = h("span", { class: "nt-muted" });
  const refresh = h("button", { class: "nt-button", title: "refresh now", text: "refresh",
    onclick: () => model.send({ action: "refresh" }) });
  const links = h("div", { class: "nt-links" });
  const error = h("div", { class: "nt-error" });

  const topic = h("select", { class: "nt-topic", "aria-label": "topic",
    onchange: () => set("topic", topic.value) });
  let typing = 0;
  const query = h("input", { class: "nt-query", type: "search", placeholder: "filter by text",
    "aria-label": "filter by text", oninput: () => {
      clearTimeout(typing);
      typing = setTimeout(() => set("query", query.value), 250);
    } });
  const prefetchTopic = h("button", { class: "nt-button nt-prefetch-topic",
    onclick: () => model.send({ action: "prefetch", topics: [model.get("topic")] }) });
  const count = h("span", { class: "nt-muted nt-count" });
  const previous = h("button", { class: "nt-button nt-previous", text: "‹ newer", title: "the previous page",
    onclick: () => set("page", Math.max(model.get("page") - 1, 0)) });
  const next = h("button", { class: "nt-button nt-next", text: "older ›", title: "the next page",
    onclick: () => set("page", model.get("page") + 1) });
  const rules = h("div", { class: "nt-rules" });
  const confirm = h("div", { class: "nt-confirm", hidden: true });
  const table = h("table", { class: "nt-table" });
  const code = h("div", { class: "nt-panel nt-code", hidden: true });
  const preview = h("div", { class: "nt-panel nt-preview", hidden: true });
  const message = h("div", { class: "nt-message" });

  el.replaceChildren(
    h("div", { class: "nt-header" }, title, info, refresh), links, error,
    h("div", { class: "nt-filters" }, topic, query, prefetchTopic, count, previous, next),
    confirm, rules, h("div", { class: "nt-scroll" }, table), code, preview, message);

  function panelTitle(panel, text, onclose) {
    return h("div", { class: "nt-panel-title" }, h("span", { text }),
      h("button", { class: "nt-button", text: "close", onclick: () => { panel.hidden = true; onclose?.(); } }));
  }

  async function showCode(row) {
    const text = `${model.get("setup")}\n${row.code}`;
    const note = h("div", { class: "nt-muted", text: "copying…" });
    code.replaceChildren(panelTitle(code, `open ${row.site}/${row.name}`), h("pre", { text }), note);
    code.hidden = false;
    note.textContent = (await copy(text))
      ? "copied to the clipboard: paste it into a cell"
      : "select the code and copy it into a cell";
  }

  function entryRow(row) {
    const name = h("td", { class: "nt-name" }, h("div", { text: row.name }),
      row.description ? h("div", { class: "nt-muted nt-description", text: row.description }) : null);
    const topics = h("td", {}, ...row.topics.map((t) => h("span", { class: "nt-tag", text: t })));
    const state = h("td", { class: `nt-state nt-${row.state}` }, h("span", { text: STATE_LABEL[row.state] || row.state }),
      row.state !== "here" && row.held > 0 ? bar(row.held, row.objects) : null);
    const actions = h("td", { class: "nt-actions" },
      h("button", { class: "nt-button nt-open", text: "open", title: "show and copy the code that opens it",
        onclick: () => showCode(row) }),
      row.state === "here" ? null : h("button", { class: "nt-button nt-prefetch", text: "prefetch",
        title: "hold it at this site, now and when it changes",
        onclick: () => model.send({ action: "prefetch", names: [`${row.site}/${row.name}`] }) }),
      row.preview ? h("button", { class: "nt-button nt-show", text: "preview",
        onclick: () => model.send({ action: "preview", site: row.site, name: row.name }) }) : null,
      h("button", { class: "nt-button nt-versions", text: "versions", title: "every version, and the code that opens one",
        onclick: () => model.send({ action: "versions", site: row.site, name: row.name }) }));
    return h("tr", { class: "nt-row", dataset: { site: row.site, name: row.name } },
      name, topics, h("td", { class: "nt-num" }, row.size_text, h("div", { class: "nt-muted", text: row.format })),
      h("td", { class: "nt-time", text: when(row.published) }), state, actions);
  }

  function drawRows() {
    const sites = Object.fromEntries(model.get("sites").map((s) => [s.site, s]));
    const groups = new Map();
    for (const row of model.get("rows")) {
      if (!groups.has(row.site)) groups.set(row.site, []);
      groups.get(row.site).push(row);
    }
    const body = [h("tr", {}, ...COLUMNS.map((c) => h("th", { text: c })))];
    for (const [site, rows] of groups) {
      const closed = collapsed.has(site);
      body.push(h("tr", { class: "nt-site", dataset: { site }, onclick: () => {
        if (closed) collapsed.delete(site); else collapsed.add(site);
        drawRows();
      } }, h("td", { colspan: COLUMNS.length },
        h("span", { class: "nt-arrow", text: closed ? "▸" : "▾" }), h("b", { text: site }),
        sites[site]?.own ? h("span", { class: "nt-tag", text: "this site" }) : null,
        h("span", { class: "nt-muted", text: ` ${rows.length} shown of ${sites[site]?.entries ?? "?"} entries` }))));
      if (!closed) body.push(...rows.map(entryRow));
    }
    if (!groups.size) body.push(h("tr", {}, h("td", { colspan: COLUMNS.length, class: "nt-muted", text: "no entries match" })));
    table.replaceChildren(...body);
    const shown = model.get("rows").length;
    const matched = model.get("matched");
    const page = model.get("page");
    count.textContent = `${matched} of ${model.get("total")} entries` +
      (shown < matched ? `, page ${page + 1} (${shown} shown)` : "");
    previous.hidden = next.hidden = shown >= matched;
    previous.disabled = page === 0;
    next.disabled = !model.get("more");
  }

  function drawTopics() {
    const chosen = model.get("topic");
    const names = [...new Set([...model.get("topics"), ...(chosen ? [chosen] : [])])].sort();
    topic.replaceChildren(h("option", { value: "", text: "all topics" }),
      ...names.map((t) => h("option", { value: t, text: t, selected: t === chosen })));
    topic.value = chosen;
    prefetchTopic.hidden = !chosen;
    prefetchTopic.textContent = `prefetch all ${chosen}`;
    if (document.activeElement !== query) query.value = model.get("query");
  }

  function drawHeader() {
    title.textContent = `eurec4a-nt catalog · ${model.get("site") || "local store"}`;
    const live = model.get("following") ? `updated ${model.get("updated")}, following` : `as of ${model.get("updated")}`;
    info.textContent = ` ${model.get("source")} · ${model.get("total")} entries · ${live}`;
    const linkList = model.get("links");
    links.replaceChildren(h("span", { class: "nt-muted", text: "links: " }),
      ...(linkList.length ? linkList.map((l) => h("span", { class: `nt-link ${l.connected ? "nt-up" : "nt-down"}`,
        text: `● ${l.peer} ${l.connected ? "connected" : "offline"}${!l.connected && l.offline_since ? ` since ${l.offline_since}` : ""}` }))
        : [h("span", { class: "nt-muted", text: "none" })]));
    error.textContent = model.get("error");
    error.hidden = !model.get("error");
    message.textContent = model.get("message");
  }

  function drawRules() {
    rules.replaceChildren(...model.get("rules").map((r) => h("div", { class: "nt-rule", dataset: { id: r.id } },
      h("span", { text: `prefetch ${r.what}` }), bar(r.held, r.needed),
      h("span", { class: "nt-muted", text: `${r.complete} of ${r.entries} entries here, ${r.to_come} to come` }),
      ...(r.refused ? [h("span", { class: "nt-error", text: r.refused })] : []),
      h("button", { class: "nt-button nt-unprefetch", text: "remove", title: "fetch nothing more for this rule",
        onclick: () => model.send({ action: "unprefetch", id: r.id }) }))));
  }

  function drawConfirm() {
    const c = model.get("confirm");
    confirm.hidden = !c.what;
    if (!c.what) return;
    confirm.replaceChildren(
      h("span", { text: `prefetch ${c.what}: about ${c.size_text} in ${c.entries} entries would come to this site over its links. ` }),
      h("button", { class: "nt-button nt-confirm-yes", text: `prefetch ${c.size_text}`,
        onclick: () => model.send({ action: "prefetch", topics: c.topics, sites: c.sites, names: c.names, confirmed: true }) }),
      h("button", { class: "nt-button nt-confirm-no", text: "cancel", onclick: () => model.send({ action: "cancel" }) }));
  }

  function versionsTable(versions) {
    const head = h("tr", {}, ...["seq", "time", "", "size", "history", "open it"].map((c) => h("th", { text: c })));
    const rows = versions.map((v) => h("tr", { class: "nt-version" },
      h("td", { class: "nt-num", text: `#${v.seq}` }), h("td", { class: "nt-time", text: when(v.time) }),
      h("td", { text: v.op === "put" ? v.format : "removed" }), h("td", { class: "nt-num", text: v.size_text }),
      h("td", { class: "nt-muted", text: [v.replaces ? `replaces #${v.replaces}` : "",
        v.replaced_by ? `replaced by #${v.replaced_by}` : v.op === "put" ? "current" : ""].filter(Boolean).join(", ") }),
      h("td", {}, v.code ? h("code", { text: v.code }) : null)));
    return h("table", { class: "nt-table nt-versions-table" }, head, ...rows);
  }

  function drawPreview() {
    const p = model.get("preview");
    if (!p.kind) { preview.hidden = true; return; }
    let body;
    if (p.kind === "loading") body = h("div", { class: "nt-muted", text: "loading…" });
    else if (p.kind === "image") body = h("img", { src: p.src, alt: p.name });
    else if (p.kind === "markdown") { body = h("div", { class: "nt-markdown" }); body.innerHTML = p.html; }
    else if (p.kind === "versions") body = versionsTable(p.versions);
    else body = h("div", { class: "nt-error", text: p.message });
    const title = `${p.kind === "versions" ? "versions of" : "preview"} ${p.site}/${p.name}`;
    preview.replaceChildren(panelTitle(preview, title, () => set("preview", {})), body);
    preview.hidden = false;
  }

  on("change:rows change:sites change:matched change:total change:page change:more", drawRows);
  on("change:topics change:topic change:query", drawTopics);
  on("change:site change:source change:updated change:following change:links change:error change:message change:total", drawHeader);
  on("change:rules", drawRules);
  on("change:confirm", drawConfirm);
  on("change:preview", drawPreview);
  drawRows(); drawTopics(); drawHeader(); drawRules(); drawConfirm(); drawPreview();
  return () => { for (const [event, fn] of listeners) model.off(event, fn); };
}

export default { render };
