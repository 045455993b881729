// The search page (woshipm_crawler.outputs.book): Pagefind's search API over every index segment of the
// site, merged. Articles are indexed under the overlapping bigrams of their Chinese text, spelt in
// Latin letters, and their other words (woshipm_crawler/outputs/book_search.py: search_words, whose
// rules searchWords below repeats exactly). A query is turned into the same words and asked for as an
// exact phrase, so an article is found when it holds the query as written (white space and
// punctuation aside); words the query separates by spaces must all be there. ?q= runs a search at
// once; typing keeps ?q= current, so a search can be linked. Every text goes into the page as text.
"use strict";
(function () {
  const PAGE = 10;
  const BIGRAM_CHARS = "\\u3040-\\u30ff\\u3400-\\u4dbf\\u4e00-\\u9fff\\uac00-\\ud7af\\uf900-\\ufaff";
  const UNIT = new RegExp(`([${BIGRAM_CHARS}])|(?:(?![${BIGRAM_CHARS}])[\\p{L}\\p{N}])+`, "gu");

  function spell(char) {
    let number = char.codePointAt(0);
    let letters = "";
    for (let k = 0; k < 4; k++) {
      letters = String.fromCharCode(97 + (number % 26)) + letters;
      number = Math.floor(number / 26);
    }
    return letters;
  }

  function searchWords(text) {
    const words = [];
    let run = [];
    const flush = () => {
      if (run.length === 1) words.push("q" + run[0]);
      for (let i = 0; i + 1 < run.length; i++) words.push("q" + run[i] + run[i + 1]);
      run = [];
    };
    for (const match of text.matchAll(UNIT)) {
      if (match[1]) run.push(spell(match[1]));
      else { flush(); words.push(match[0].toLowerCase()); }
    }
    flush();
    return words;
  }
  window.woshipmSearchWords = searchWords; // for the tests: the same words as the indexer's

  const root = new URL(".", window.location.href);
  const input = document.getElementById("search-input");
  const status = document.getElementById("search-status");
  const list = document.getElementById("search-results");
  const more = document.getElementById("search-more");
  const query = new URLSearchParams(window.location.search).get("q") || "";
  input.value = query;
  if (root.protocol === "file:") {
    document.getElementById("search-file-note").hidden = false;
    return;
  }
  const bundles = JSON.parse(document.getElementById("search-bundles").textContent)
    .map((path) => new URL(path, root).pathname);
  const ready = (async function () {
    const pagefind = await import(bundles[0] + "pagefind.js");
    await pagefind.options({ baseUrl: root.pathname });
    await Promise.all(bundles.slice(1).map((bundle) => pagefind.mergeIndex(bundle)));
    return pagefind;
  })();

  // The parts of a query: each run without white space, as its words. One lone Chinese character
  // matches the bigrams it starts (Pagefind matches a query's last word as a prefix).
  function parts(term) {
    return term.split(/\s+/).map(searchWords).filter((words) => words.length);
  }

  function pagefindQuery(words) {
    return words.length === 1 && /^q[a-z]{4}$/.test(words[0]) ? words[0] : `"${words.join(" ")}"`;
  }

  async function find(pagefind, term) {
    // Articles holding every part; ranked by the sum of Pagefind's scores.
    let found = null;
    for (const words of parts(term)) {
      const search = await pagefind.search(pagefindQuery(words));
      const scores = new Map(search.results.map((result) => [result.id, result]));
      if (found === null) {
        found = scores;
      } else {
        for (const [id, result] of found) {
          if (!scores.has(id)) found.delete(id);
          else result.score += scores.get(id).score;
        }
      }
    }
    return found ? [...found.values()].sort((a, b) => b.score - a.score) : [];
  }

  const IGNORED = /[\s\p{P}\p{S}]/u;
  function locate(text, term) {
    // [start, end) of the first part of the query in the text, matched without white space,
    // punctuation and case; null when absent (the words matched in the title, author or tags).
    const needle = term.split(/\s+/).filter(Boolean)[0].replace(new RegExp(IGNORED.source, "gu"), "").toLowerCase();
    if (!needle) return null;
    const kept = [];
    for (let i = 0; i < text.length; i++) if (!IGNORED.test(text[i])) kept.push(i);
    const hit = kept.map((i) => text[i]).join("").toLowerCase().indexOf(needle);
    return hit < 0 ? null : [kept[hit], kept[hit + needle.length - 1] + 1];
  }

  function snippet(text, term) {
    const span = locate(text, term) || [0, 0];
    const start = Math.max(0, span[0] - 40);
    const end = Math.min(text.length, span[1] + 70);
    const mark = document.createElement("mark");
    mark.textContent = text.slice(span[0], span[1]);
    const nodes = [document.createTextNode((start ? "…" : "") + text.slice(start, span[0]))];
    if (span[1] > span[0]) nodes.push(mark);
    nodes.push(document.createTextNode(text.slice(span[1], end) + (end < text.length ? "…" : "")));
    return nodes;
  }

  function show(data, term) {
    const item = document.createElement("li");
    item.className = "search-result";
    const link = document.createElement("a");
    link.className = "search-result-link";
    link.href = data.url;
    link.textContent = data.meta.title || data.url;
    const excerpt = document.createElement("p");
    excerpt.className = "search-result-excerpt";
    excerpt.append(...snippet(data.meta.text || "", term));
    item.append(link, excerpt);
    list.appendChild(item);
  }

  let generation = 0;
  async function run(term) {
    const mine = ++generation;
    const shown = term.trim();
    list.replaceChildren();
    more.hidden = true;
    delete document.body.dataset.searched;
    if (!parts(term).length) { status.textContent = ""; return; }
    status.textContent = "搜索中…";
    const started = performance.now();
    const pagefind = await ready;
    const results = await find(pagefind, term);
    if (mine !== generation) return;
    let next = 0;
    async function page() {
      const batch = await Promise.all(results.slice(next, next + PAGE).map((result) => result.data()));
      if (mine !== generation) return;
      for (const data of batch) show(data, term);
      next += batch.length;
      more.hidden = next >= results.length;
    }
    more.onclick = page;
    await page();
    if (mine !== generation) return;
    status.textContent = results.length ? `找到 ${results.length} 篇含“${shown}”的文章` : `没有找到含“${shown}”的文章`;
    status.dataset.ms = String(Math.round(performance.now() - started));
    document.body.dataset.searched = term;
  }

  let timer = null;
  input.addEventListener("input", function () {
    const url = new URL(window.location.href);
    if (input.value) url.searchParams.set("q", input.value); else url.searchParams.delete("q");
    window.history.replaceState(null, "", url);
    clearTimeout(timer);
    timer = setTimeout(() => run(input.value), 250);
  });
  document.getElementById("search-form").addEventListener("submit", function (event) {
    event.preventDefault();
    clearTimeout(timer);
    run(input.value);
  });
  if (query) run(query);
})();
