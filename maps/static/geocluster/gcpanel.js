/* geocluster map panel: run analyses from the map and choose what each layer shows.
 *
 * Part of geocluster (MIT). Vanilla JS on top of Leaflet and gcmap.js, no framework:
 *   - "Run clusters": the firms dataset (GET /datasets, kind firms, shown as name@version),
 *     a sector, section or sector group (GET /sectors, with ISIC titles), DBSCAN or
 *     HDBSCAN and their parameters; for DBSCAN the k-distance knee (POST
 *     /analyses/kdistance) is shown as the suggested eps. The run is a job (POST
 *     /analyses/clusters with async: true, then GET /jobs/{id} for the progress bar);
 *     when it is done its cluster outlines (GET /collections/{run}.clusters/items) are
 *     added to the map with a legend naming the run, its date and the firms version.
 *   - "Layers": for each layer, the datasets/runs/rasters that could feed it, by name and
 *     date (GET /datasets, /runs, /rasters). The server draws a layer only when it was
 *     named or is the only candidate (gc.mapState.choices lists the others); choosing
 *     reloads the map with that input named.
 *   - The server says who is calling (GET /me): viewers and anonymous callers get no run
 *     buttons (the API refuses them anyway).
 */
(function () {
  "use strict";
  var gc = (window.gc = window.gc || {});
  var esc = function (v) { return gc.esc ? gc.esc(v) : String(v); };

  // layer -> where its candidates come from and which /map parameter names it
  var LAYERS = [
    { key: "firms", title: "Firms", from: "datasets", kind: "firms" },
    { key: "clusters", title: "Point clusters", from: "runs", kind: "clusters" },
    { key: "ranking", title: "Cluster ranking", from: "runs", kind: "ranking" },
    { key: "kde", title: "Firm density (KDE)", from: "rasters", kind: "kde" },
    { key: "boundaries", title: "Regions", from: "datasets", kind: "boundaries" },
    { key: "specialization", title: "Specialisation (LQ)", from: "runs", kind: "specialization" },
    { key: "indicators", title: "Indicators", from: "datasets", kind: "indicators" },
    { key: "hotspots", title: "Hotspots", from: "runs", kind: "hotspots" },
    { key: "assets", title: "Territorial assets", from: "datasets", kind: "assets" },
    { key: "gaps", title: "Asset gaps", from: "runs", kind: "assets", analysis: "gaps" },
    { key: "sdg", title: "SDG proxies", from: "runs", kind: "sdg" },
    { key: "change", title: "Cluster change", from: "runs", kind: "change" },
    { key: "institutions", title: "Support institutions", from: "runs", kind: "institutions" },
    { key: "dynamics", title: "Cluster emergence and growth", from: "runs", kind: "dynamics" },
    { key: "shiftshare", title: "Shift-share", from: "runs", kind: "shiftshare" },
    { key: "relatedness", title: "Economic complexity", from: "runs", kind: "relatedness" },
  ];
  // choosing a layer's input drops the choices that depended on the previous one
  var DEPENDENTS = {
    firms: ["clusters", "ranking", "kde", "specialization", "sdg", "change", "institutions",
            "dynamics", "shiftshare", "relatedness"],
    clusters: ["ranking", "change", "institutions", "dynamics"],
    boundaries: ["specialization", "hotspots", "sdg", "dynamics", "shiftshare", "relatedness"],
    assets: ["gaps"],
  };

  function when(created) {
    var t = String(created || "");
    return t.length >= 16 ? t.slice(0, 10) + " " + t.slice(11, 16) + " UTC" : t;
  }
  gc.when = when;

  function api(method, url, body) {
    var opts = { method: method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) {
          var err = new Error(typeof data.detail === "string" ? data.detail : "HTTP " + r.status);
          err.status = r.status;
          throw err;
        }
        return data;
      });
    });
  }

  function el(tag, attrs, html) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (html !== undefined) e.innerHTML = html;
    return e;
  }

  function option(value, label, selected) {
    var o = el("option", { value: value });
    o.textContent = label;
    if (selected) o.selected = true;
    return o;
  }

  function datasetLabel(d) { return d.name + "@" + d.version + " — " + when(d.created); }

  function runLabel(r) {
    var p = r.params || {};
    var bits = [];
    if (p.method) bits.push(p.method);
    if (p.eps_m) bits.push("eps " + gc.num(p.eps_m, 0) + " m");
    if (p.min_cluster_size) bits.push("min size " + p.min_cluster_size);
    if (p.sectors && p.sectors.length) bits.push("sectors " + p.sectors.join(","));
    if (p.sector_group) bits.push(p.sector_group);
    if (p.firms) bits.push(p.firms);
    if (p.boundaries && !p.firms) bits.push(p.boundaries);
    if (p.indicator) bits.push(p.indicator + (p.year ? " " + p.year : ""));
    if (p.before && p.after) bits.push(p.before + " → " + p.after);
    if (p.clusters_run) bits.push("clusters " + p.clusters_run);
    return r.id + " — " + when(r.created) + (bits.length ? " (" + bits.join(", ") + ")" : "");
  }

  // -- the Layers section ------------------------------------------------------------------
  function candidatesOf(layer, lists) {
    var items = (lists[layer.from] || []).filter(function (x) {
      if (x.kind !== layer.kind) return false;
      if (layer.analysis) return (x.params || {}).analysis === layer.analysis;
      return true;
    });
    return items.map(function (x) {
      return {
        id: x.id,
        label: layer.from === "datasets" ? datasetLabel(x) : layer.from === "runs" ? runLabel(x) : x.name + " — " + when(x.created),
      };
    });
  }

  function chooseLayer(key, value) {
    var q = new URLSearchParams(window.location.search);
    (DEPENDENTS[key] || []).forEach(function (k) { q.delete(k); });
    if (value) q.set(key, value); else q.delete(key);
    window.location.assign(window.location.pathname + "?" + q.toString());
  }

  function renderLayers(box, lists, state) {
    box.innerHTML = "";
    var shown = state.shown || {};
    var choices = state.choices || {};
    LAYERS.forEach(function (layer) {
      var items = candidatesOf(layer, lists);
      if (!items.length) return;
      var pending = choices[layer.key];
      var row = el("label", { class: "gc-layer-row" + (pending ? " gc-pending" : "") });
      var head = el("span", {}, esc(layer.title) + (pending ? ' <b class="gc-choose">choose one of ' + pending.length + "</b>" : ""));
      var sel = el("select", { "data-layer": layer.key, "aria-label": layer.title });
      var current = shown[layer.key];
      sel.appendChild(option("", current ? "(none)" : pending ? "— choose —" : "(none)", !current));
      items.forEach(function (it) {
        var o = option(it.id, it.label, it.id === current);
        if (pending && pending.indexOf(it.id) >= 0) o.textContent = "● " + it.label;
        sel.appendChild(o);
      });
      sel.addEventListener("change", function () { chooseLayer(layer.key, sel.value); });
      row.appendChild(head);
      row.appendChild(sel);
      box.appendChild(row);
    });
    if (!box.children.length) box.innerHTML = "<small>The workspace holds no datasets or runs yet.</small>";
  }

  // -- the Run section -----------------------------------------------------------------------
  function sectorPayload(value) {
    if (!value) return {};
    var i = value.indexOf(":");
    var kind = value.slice(0, i), code = value.slice(i + 1);
    return kind === "group" ? { sector_group: code } : { sectors: [code] };
  }

  function sectorText(select) {
    var o = select.options[select.selectedIndex];
    return o && o.value ? o.textContent : "all sectors";
  }

  function fillSectors(select, sectors) {
    select.appendChild(option("", "All sectors", true));
    var groups = el("optgroup", { label: "Sector groups" });
    sectors.groups.forEach(function (g) {
      groups.appendChild(option("group:" + g.name, g.name.replace(/_/g, " ") + " (divisions " + g.divisions.join(", ") + ")"));
    });
    select.appendChild(groups);
    var sections = el("optgroup", { label: "ISIC Rev.4 sections" });
    sectors.sections.forEach(function (s) { sections.appendChild(option("section:" + s.code, s.code + " – " + s.title)); });
    select.appendChild(sections);
    var divisions = el("optgroup", { label: "ISIC Rev.4 divisions" });
    sectors.divisions.forEach(function (d) { divisions.appendChild(option("division:" + d.code, d.code + " – " + d.title)); });
    select.appendChild(divisions);
  }

  var RUN_FORM =
    '<label>Firms dataset <select id="gc-firms"></select></label>' +
    '<label>Sector <select id="gc-sector"></select></label>' +
    '<label>Method <select id="gc-method"><option value="dbscan">DBSCAN (distance eps)</option>' +
    '<option value="hdbscan">HDBSCAN (density, no eps)</option></select></label>' +
    '<div class="gc-dbscan"><label>eps (metres) <input id="gc-eps" type="number" min="1" step="any" inputmode="decimal"></label>' +
    '<div id="gc-eps-hint" class="gc-hint"><small>choose the firms to see the suggested eps</small></div></div>' +
    '<label>min samples <input id="gc-min-samples" type="number" min="2" step="1" value="10"></label>' +
    '<div class="gc-hdbscan" hidden><label>min cluster size <input id="gc-min-cluster-size" type="number" min="2" step="1" value="15"></label></div>' +
    '<button type="button" id="gc-run">Run clusters</button>' +
    '<div id="gc-job" hidden><progress id="gc-progress" max="1" value="0"></progress> <span id="gc-job-pct">0 %</span>' +
    '<div id="gc-status" role="status"></div></div>';

  function Panel(map, layerControl, state) {
    this.map = map;
    this.layerControl = layerControl;
    this.state = state;
    this.lists = { datasets: [], runs: [], rasters: [] };
    this.epsAuto = true;
    this.kdSeq = 0;
    this.build();
  }

  Panel.prototype.build = function () {
    var self = this;
    var ctl = L.control({ position: "topleft" });
    ctl.onAdd = function () {
      var box = L.DomUtil.create("details", "gc-panel gc-control");
      box.id = "gc-panel";
      box.innerHTML =
        '<summary title="Run an analysis, choose the layers">Analyses &amp; layers</summary>' +
        '<div class="gc-panel-body">' +
        '<section id="gc-run-section"><h3>Run clusters</h3><div id="gc-role"></div><form id="gc-run-form" hidden>' + RUN_FORM + "</form></section>" +
        '<section><h3>Layers</h3><div class="gc-layers" id="gc-layers"><small>loading…</small></div></section>' +
        "</div>";
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    };
    ctl.addTo(this.map);
    this.box = ctl.getContainer();
    this.$ = function (id) { return self.box.querySelector("#" + id); };
    if (Object.keys(this.state.choices || {}).length && !window.matchMedia("(max-width: 640px)").matches) {
      this.box.setAttribute("open", "");
    }
    this.box.addEventListener("toggle", function () {
      if (self.box.open) self.box.scrollTop = 0;
    });
    this.load();
  };

  Panel.prototype.load = function () {
    var self = this;
    Promise.all([
      api("GET", "/me").catch(function () { return { role: "anonymous", can_run: false }; }),
      api("GET", "/datasets"),
      api("GET", "/runs"),
      api("GET", "/rasters").catch(function () { return { rasters: [] }; }),
      api("GET", "/sectors"),
    ]).then(function (r) {
      self.me = r[0];
      self.lists = { datasets: r[1].datasets || [], runs: r[2].runs || [], rasters: r[3].rasters || [] };
      renderLayers(self.$("gc-layers"), self.lists, self.state);
      self.setupRun(r[4]);
    }).catch(function (err) {
      self.$("gc-layers").innerHTML = "<small>could not list the workspace: " + esc(err.message) + "</small>";
    });
  };

  Panel.prototype.setupRun = function (sectors) {
    var self = this;
    var role = this.me.role || "anonymous";
    if (!this.me.can_run) {
      this.$("gc-role").innerHTML = "<small>Signed in as <b>" + esc(role) + "</b>: you can choose the layers " +
        "to view; running analyses needs an editor or admin API key.</small>";
      return;
    }
    this.$("gc-role").innerHTML = "<small>role: " + esc(role) + (this.me.auth === "open" ? " (open single-user mode)" : "") + "</small>";
    var form = this.$("gc-run-form");
    form.hidden = false;
    var firms = this.$("gc-firms");
    var list = this.lists.datasets.filter(function (d) { return d.kind === "firms"; });
    // explicit inputs: preselect only the map's firms (named or the only candidate)
    var preset = (this.state.shown || {}).firms || (list.length === 1 ? list[0].id : "");
    firms.appendChild(option("", list.length ? "— choose firms —" : "(no firms dataset)", !preset));
    list.forEach(function (d) { firms.appendChild(option(d.id, d.name + "@" + d.version + " (" + gc.num(d.rows) + " firms)", d.id === preset)); });
    fillSectors(this.$("gc-sector"), sectors);
    var method = this.$("gc-method");
    method.addEventListener("change", function () {
      var db = method.value === "dbscan";
      form.querySelector(".gc-dbscan").hidden = !db;
      form.querySelector(".gc-hdbscan").hidden = db;
      if (db) self.suggest();
    });
    this.$("gc-eps").addEventListener("input", function () { self.epsAuto = false; });
    [firms, this.$("gc-sector"), this.$("gc-min-samples")].forEach(function (s) {
      s.addEventListener("change", function () { self.suggest(); });
    });
    this.$("gc-run").addEventListener("click", function () { self.run(); });
    form.addEventListener("submit", function (ev) { ev.preventDefault(); self.run(); });
    this.suggest();
  };

  Panel.prototype.inputs = function () {
    var body = Object.assign(
      { firms: this.$("gc-firms").value, method: this.$("gc-method").value },
      sectorPayload(this.$("gc-sector").value)
    );
    var ms = parseInt(this.$("gc-min-samples").value, 10);
    if (ms) body.min_samples = ms;
    if (body.method === "dbscan") {
      var eps = parseFloat(this.$("gc-eps").value);
      if (eps > 0) body.eps_m = eps;
    } else {
      var mcs = parseInt(this.$("gc-min-cluster-size").value, 10);
      if (mcs) body.min_cluster_size = mcs;
    }
    return body;
  };

  // The k-distance knee of the chosen firms (k = min samples) as the suggested eps.
  Panel.prototype.suggest = function () {
    var self = this;
    var hint = this.$("gc-eps-hint");
    var body = this.inputs();
    if (!body.firms || body.method !== "dbscan") return;
    var seq = ++this.kdSeq;
    hint.innerHTML = "<small>computing the k-distance curve…</small>";
    var kd = Object.assign({ firms: body.firms, k: body.min_samples || 10 }, sectorPayload(this.$("gc-sector").value));
    api("POST", "/analyses/kdistance", kd).then(function (r) {
      if (seq !== self.kdSeq) return;
      var eps = Math.round(r.suggested_eps_m);
      hint.innerHTML = '<small>suggested eps: <b id="gc-eps-suggested">' + gc.num(eps, 0) + " m</b> (knee of the " +
        r.k + "-distance curve of " + gc.num(r.n_firms) + ' firms) <button type="button" id="gc-eps-use">use</button></small>';
      hint.querySelector("#gc-eps-use").addEventListener("click", function () {
        self.$("gc-eps").value = eps;
        self.epsAuto = true;
      });
      if (self.epsAuto || !self.$("gc-eps").value) self.$("gc-eps").value = eps;
    }).catch(function (err) {
      if (seq !== self.kdSeq) return;
      hint.innerHTML = '<small class="gc-error">no suggestion: ' + esc(err.message) + "</small>";
    });
  };

  Panel.prototype.status = function (html, cls) {
    var s = this.$("gc-status");
    s.className = cls || "";
    s.innerHTML = html;
  };

  Panel.prototype.progress = function (value) {
    var v = Math.max(0, Math.min(1, Number(value) || 0));
    this.$("gc-progress").value = v;
    this.$("gc-job-pct").textContent = Math.round(v * 100) + " %";
  };

  Panel.prototype.run = function () {
    var self = this;
    var body = this.inputs();
    this.$("gc-job").hidden = false;
    if (!body.firms) { this.status("choose a firms dataset first", "gc-error"); return; }
    if (body.method === "dbscan" && !body.eps_m) { this.status("give eps in metres (or use the suggestion)", "gc-error"); return; }
    var button = this.$("gc-run");
    button.disabled = true;
    this.progress(0);
    this.status("submitting…");
    var sector = sectorText(this.$("gc-sector"));
    api("POST", "/analyses/clusters", Object.assign({ async: true }, body)).then(function (job) {
      self.poll(job.job_id, body, sector, button);
    }).catch(function (err) {
      button.disabled = false;
      self.status("not started: " + esc(err.message), "gc-error");
    });
  };

  Panel.prototype.poll = function (jobId, body, sector, button) {
    var self = this;
    api("GET", "/jobs/" + encodeURIComponent(jobId)).then(function (job) {
      self.progress(job.state === "done" ? 1 : job.progress);
      if (job.state === "done") {
        button.disabled = false;
        var res = job.result || {};
        self.status("done: " + gc.num(res.n_clusters) + (res.n_clusters === 1 ? " cluster, " : " clusters, ") + gc.num(res.noise) + " firms in no cluster (run " + esc(res.run_id) + ")", "gc-done");
        self.box.setAttribute("data-job", "done");
        self.showRun(res.run_id, body, sector);
      } else if (job.state === "failed") {
        button.disabled = false;
        self.status("failed: " + esc(job.error || job.message || "error"), "gc-error");
        self.box.setAttribute("data-job", "failed");
      } else {
        self.status(esc(job.state) + (job.message ? ": " + esc(job.message) : ""));
        setTimeout(function () { self.poll(jobId, body, sector, button); }, 400);
      }
    }).catch(function (err) {
      button.disabled = false;
      self.status("lost the job: " + esc(err.message), "gc-error");
    });
  };

  // The run's cluster outlines from its collection, with a legend naming where they come from.
  Panel.prototype.showRun = function (runId, body, sector) {
    var self = this;
    Promise.all([
      api("GET", "/runs/" + encodeURIComponent(runId)),
      api("GET", "/collections/" + encodeURIComponent(runId + ".clusters") + "/items?limit=10000"),
      api("GET", "/datasets/" + encodeURIComponent(body.firms)),
    ]).then(function (r) {
      var run = r[0], fc = r[1], firms = r[2];
      if (self.runLayer) {
        self.map.removeLayer(self.runLayer);
        self.layerControl.removeLayer(self.runLayer);
        self.runLegend.remove();
      }
      var layer = L.geoJSON(fc, {
        style: function () {
          return { color: "#d94801", weight: 2.5, fillColor: "#fd8d3c", fillOpacity: 0.3, className: "gc-cluster gc-run-cluster" };
        },
        onEachFeature: function (f, lyr) {
          var p = f.properties || {};
          lyr.bindPopup(gc.table("Cluster " + p.cluster_id, [
            ["Dominant sector", p.dominant_sector !== undefined && p.dominant_sector !== null ? gc.sector(p.dominant_sector) +
              (p.dominant_share !== undefined && p.dominant_share !== null ? " (" + Math.round(100 * p.dominant_share) + " % of firms)" : "") : undefined],
            ["Firms", p.n_firms !== undefined ? gc.num(p.n_firms) + " firms" : undefined],
            ["Employees", p.employees !== undefined && p.employees !== null ? gc.num(p.employees, 0) + " persons" : undefined],
            ["Area", p.area_km2 !== undefined && p.area_km2 !== null ? gc.num(p.area_km2, 1) + " km²" : undefined],
            ["Density", p.density_per_km2 !== undefined && p.density_per_km2 !== null ? gc.num(p.density_per_km2, 1) + " firms per km²" : undefined],
          ], "source: clusters run " + esc(run.id) + " (" + esc(when(run.created)) + ")"), { maxWidth: 380 });
        },
      });
      var name = "Clusters " + run.id + " (" + when(run.created) + ")";
      layer.addTo(self.map);
      self.layerControl.addOverlay(layer, esc(name));
      self.runLayer = layer;
      var p = run.params || {};
      var detail = p.method === "dbscan"
        ? "eps " + gc.num(p.eps_m, 0) + " m, min samples " + p.min_samples
        : "min cluster size " + p.min_cluster_size + (p.min_samples ? ", min samples " + p.min_samples : "");
      var legend = L.control({ position: "bottomright" });
      legend.onAdd = function () {
        var div = L.DomUtil.create("div", "gc-run-legend gc-control");
        // folded on a phone, as gc.responsive folds the other legends
        var open = window.matchMedia("(max-width: 640px)").matches ? "" : " open";
        div.innerHTML = '<details class="gc-legend gc-fold"' + open + "><summary>Point clusters (new run)</summary>" +
          '<div><i style="background:#fd8d3c;border:2px solid #d94801"></i>cluster outline (' + gc.num(fc.features.length) + ")</div>" +
          "<div><small>method: " + esc(p.method) + " (" + esc(detail) + ")<br>sector: " + esc(sector) +
          "<br>source: clusters run " + esc(run.id) + " (" + esc(when(run.created)) + ")" +
          "<br>firms: " + esc(firms.name + "@" + firms.version) + " (" + esc(when(firms.created)) + ")" +
          '<br><a href="/map?firms=' + encodeURIComponent(firms.id) + "&clusters=" + encodeURIComponent(run.id) +
          '">open the map on this run</a></small></div></details>';
        L.DomEvent.disableClickPropagation(div);
        return div;
      };
      legend.addTo(self.map);
      self.runLegend = legend;
      function sync() { legend.getContainer().style.display = self.map.hasLayer(layer) ? "" : "none"; }
      self.map.on("layeradd layerremove", sync);
      if (fc.features.length) {
        self.map.fitBounds(layer.getBounds(), { padding: [20, 20], maxZoom: 13 });
      }
      // the new run joins the layer chooser's list
      api("GET", "/runs").then(function (runs) {
        self.lists.runs = runs.runs || [];
        renderLayers(self.$("gc-layers"), self.lists, self.state);
      });
    }).catch(function (err) {
      self.status("the run finished but its clusters could not be drawn: " + esc(err.message), "gc-error");
    });
  };

  gc.panel = function (map, layerControl) {
    gc.mapPanel = new Panel(map, layerControl, gc.mapState || { shown: {}, choices: {} });
    return gc.mapPanel;
  };
})();
