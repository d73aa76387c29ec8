/* geocluster web map helpers (our own code, BSD/MIT-free: part of geocluster, MIT).
 *
 * Vector tiles are drawn by protomaps-leaflet (global `protomapsL`, vendored beside this
 * file); this file adds what the planners' map needs on top of it:
 *   - gc.pointLayer: firms / assets MVT layers styled by kind (category colours for assets,
 *     grid-count bubbles for aggregated cells),
 *   - gc.basemapLayer / gc.labelLayer: the offline basemap (/basemap/tiles) and its place
 *     names, drawn in a pane above the data so that labels stay readable,
 *   - gc.kdeLayer: the KDE PNG tiles with low densities made transparent,
 *   - picking: a click looks up the features under the pointer in the layers' tile caches
 *     (protomaps-leaflet's queryTileFeaturesDebug) and opens a popup with readable fields.
 */
(function () {
  "use strict";
  var gc = (window.gc = window.gc || {});
  gc.sectors = gc.sectors || {};
  gc.assetColors = gc.assetColors || {};
  gc.assetLabels = gc.assetLabels || {};
  var picks = [];

  function esc(v) {
    return String(v).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  gc.esc = esc;

  function num(v, digits) {
    if (v === undefined || v === null || v === "" || !isFinite(Number(v))) return "–";
    var x = Number(v);
    if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString("en");
    if (Number.isInteger(x)) return String(x);
    return x.toFixed(digits === undefined ? 1 : digits);
  }
  gc.num = num;

  function yesNo(v) {
    if (v === undefined || v === null) return "–";
    return v === true || v === "true" || v === 1 ? "yes" : "no";
  }

  function sector(code) {
    if (code === undefined || code === null || code === "") return "–";
    var c = String(code);
    var t = gc.sectors[c];
    return esc(c) + (t ? " – " + esc(t) : "");
  }
  gc.sector = sector;

  function table(title, rows, note) {
    var body = "";
    rows.forEach(function (r) {
      if (r[1] === undefined || r[1] === null) return;
      body += "<tr><th>" + esc(r[0]) + "</th><td>" + r[1] + "</td></tr>";
    });
    return '<div class="gc-popup"><b>' + esc(title) + "</b><table>" + body + "</table>" +
      (note ? "<small>" + note + "</small>" : "") + "</div>";
  }
  gc.table = table;

  gc.firmPopup = function (p) {
    if (p.aggregated) {
      return table(num(p.count) + " firms in this grid cell", [
        ["Employees", p.employees !== undefined ? num(p.employees, 0) + " persons" : undefined],
      ], "Grid cell of the firm tiles: zoom in to see individual firms.");
    }
    return table(p.name || p.firm_id || "Firm", [
      ["Sector (ISIC Rev.4)", sector(p.sector_code || p.isic_division)],
      ["Section", p.isic_section ? sector(p.isic_section) : undefined],
      ["Employees", p.employees !== undefined ? num(p.employees, 0) + " persons" : undefined],
      ["Women-led", p.women_led !== undefined ? yesNo(p.women_led) : undefined],
      ["Youth-led", p.youth_led !== undefined ? yesNo(p.youth_led) : undefined],
      ["Informal", p.informal !== undefined ? yesNo(p.informal) : undefined],
      ["Founded", p.founded !== undefined ? esc(p.founded) : undefined],
      ["Cluster", p.cluster_id !== undefined ? (Number(p.cluster_id) < 0 ? "none (noise)" : esc(p.cluster_id)) : undefined],
      ["Firm id", p.firm_id !== undefined ? esc(p.firm_id) : undefined],
    ]);
  };

  gc.assetPopup = function (p) {
    if (p.aggregated) {
      return table(num(p.count) + " assets in this grid cell", [],
        "More assets than one tile may carry: zoom in to see each one.");
    }
    var cat = p.category ? String(p.category) : "";
    var swatch = cat ? '<i class="gc-swatch" style="background:' + (gc.assetColors[cat] || "#666") + '"></i>' : "";
    return table(p.name || p.asset_id || "Asset", [
      ["Category", cat ? swatch + esc(gc.assetLabels[cat] || cat) : undefined],
      ["Type", p.subtype ? esc(p.subtype) : undefined],
      ["Designation", p.designation ? esc(p.designation) : undefined],
      ["Asset id", p.asset_id !== undefined ? esc(p.asset_id) : undefined],
    ]);
  };

  // -- layers ---------------------------------------------------------------------------
  function bubble(count) {
    return Math.max(3, Math.min(22, 2 + Math.sqrt(count) * 0.9));
  }

  gc.pointLayer = function (kind, url, options) {
    var P = protomapsL;
    var rules;
    if (kind === "assets") {
      rules = [
        {
          dataLayer: "default",
          filter: function (z, f) { return !f.props.aggregated; },
          symbolizer: new P.CircleSymbolizer({
            radius: function (z) { return z >= 12 ? 6 : 5; },
            fill: function (z, f) { return gc.assetColors[f.props.category] || "#666666"; },
            stroke: "#ffffff",
            width: 1.5,
            opacity: 0.95,
          }),
        },
        {
          dataLayer: "default",
          filter: function (z, f) { return !!f.props.aggregated; },
          symbolizer: new P.CircleSymbolizer({
            radius: function (z, f) { return bubble(f.props.count || 1); },
            fill: "#737373", stroke: "#252525", width: 1, opacity: 0.6,
          }),
        },
      ];
    } else {
      rules = [
        {
          dataLayer: "default",
          filter: function (z, f) { return !!f.props.aggregated; },
          symbolizer: new P.CircleSymbolizer({
            radius: function (z, f) { return bubble(f.props.count || 1); },
            fill: "#08519c", stroke: "#08306b", width: 1, opacity: 0.55,
          }),
        },
        {
          dataLayer: "default",
          filter: function (z, f) { return !f.props.aggregated; },
          symbolizer: new P.CircleSymbolizer({
            radius: 3.5, fill: "#3182bd", stroke: "#ffffff", width: 1, opacity: 0.9,
          }),
        },
      ];
    }
    var layer = P.leafletLayer(Object.assign({
      url: url,
      levelDiff: 0, // our endpoints cut 256-px tiles, with caps per tile
      maxDataZoom: 22,
      maxZoom: 22,
      attribution: "", // protomaps-leaflet's default credits its own hosted tiles
      paintRules: rules,
      labelRules: [],
    }, options || {}));
    layer.gcKind = kind;
    layer.gcPopup = kind === "assets" ? gc.assetPopup : gc.firmPopup;
    picks.push(layer);
    return layer;
  };

  gc.basemapLayer = function (url, colors, options) {
    var P = protomapsL;
    return P.leafletLayer(Object.assign({
      url: url,
      maxDataZoom: 15,
      backgroundColor: colors.water,
      paintRules: [
        { dataLayer: "land", symbolizer: new P.PolygonSymbolizer({ fill: colors.land }) },
        { dataLayer: "land", symbolizer: new P.LineSymbolizer({ color: colors.country_line, width: 0.8 }) },
        { dataLayer: "admin", symbolizer: new P.LineSymbolizer({ color: colors.admin_line, width: 0.8, dash: [3, 2] }) },
      ],
      labelRules: [],
    }, options || {}));
  };

  gc.labelLayer = function (url, colors, options) {
    var P = protomapsL;
    var byRank = function (a, b) { return (a.rank || 0) - (b.rank || 0); };
    return P.leafletLayer(Object.assign({
      url: url,
      maxDataZoom: 15,
      attribution: "",
      paintRules: [],
      labelRules: [
        {
          dataLayer: "country_labels",
          symbolizer: new P.CenteredTextSymbolizer({
            labelProps: ["name"], fill: colors.country_text, stroke: colors.place_halo, width: 2,
            font: "600 12px sans-serif", textTransform: "uppercase",
          }),
        },
        {
          dataLayer: "places",
          sort: byRank,
          symbolizer: new P.GroupSymbolizer([
            new P.CircleSymbolizer({ radius: 2, fill: colors.place_text, stroke: colors.place_halo, width: 1 }),
            new P.OffsetTextSymbolizer({
              labelProps: ["name"], fill: colors.place_text, stroke: colors.place_halo, width: 2,
              offsetX: 5, offsetY: 4,
              font: function (z, f) {
                var pop = f && f.props.population ? f.props.population : 0;
                return (pop >= 1000000 ? "600 13px" : pop >= 100000 ? "500 12px" : "400 11px") + " sans-serif";
              },
            }),
          ]),
        },
      ],
    }, options || {}));
  };

  // KDE PNG tiles on a canvas: pixels whose colour-ramp position is below `cut` (0-1) are
  // transparent, higher ones fade in, so low density no longer paints an opaque rectangle.
  // The PNG colours are exact entries of the ramp (`ramp`: 256 [r, g, b]), so each pixel's
  // position is a table look-up.
  gc.kdeLayer = function (url, ramp, cut, options) {
    var index = new Map();
    ramp.forEach(function (c, i) { index.set((c[0] << 16) | (c[1] << 8) | c[2], i); });
    var lo = Math.round(cut * 255);
    var Kde = L.GridLayer.extend({
      gcKind: "kde",
      createTile: function (coords, done) {
        var tile = document.createElement("canvas");
        var size = this.getTileSize();
        tile.width = size.x;
        tile.height = size.y;
        var img = new Image();
        img.onload = function () {
          var ctx = tile.getContext("2d");
          ctx.drawImage(img, 0, 0, size.x, size.y);
          var d = ctx.getImageData(0, 0, size.x, size.y);
          var px = d.data;
          for (var i = 0; i < px.length; i += 4) {
            if (px[i + 3] === 0) continue;
            var k = index.get((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
            if (k === undefined) continue;
            px[i + 3] = k < lo ? 0 : Math.round(255 * (0.45 + 0.55 * (k - lo) / Math.max(1, 255 - lo)));
          }
          ctx.putImageData(d, 0, 0);
          done(null, tile);
        };
        img.onerror = function () { done(null, tile); };
        img.src = L.Util.template(url, { z: coords.z, x: coords.x, y: coords.y });
        return tile;
      },
    });
    return new Kde(Object.assign({ maxZoom: 22 }, options || {}));
  };

  // -- picking --------------------------------------------------------------------------
  // Features of the visible point layers within `brush` px of the click, nearest first.
  function hitsAt(map, latlng, individualOnly) {
    var out = [];
    var z = Math.round(map.getZoom());
    var world = map.project(latlng, z);
    var cx = ((world.x % 256) + 256) % 256;
    var cy = ((world.y % 256) + 256) % 256;
    picks.forEach(function (layer) {
      if (!map.hasLayer(layer)) return;
      var found = layer.queryTileFeaturesDebug(latlng.lng, latlng.lat, 9);
      found.forEach(function (list) {
        list.forEach(function (h) {
          var p = h.feature.props || {};
          if (individualOnly && p.aggregated) return;
          var g = h.feature.geom[0][0];
          var r = p.aggregated ? bubble(p.count || 1) : 0;
          out.push({ layer: layer, props: p, d: Math.hypot(g.x - cx, g.y - cy) - r });
        });
      });
    });
    out.sort(function (a, b) { return a.d - b.d; });
    return out;
  }

  function hitsHtml(hits) {
    if (!hits.length) return "";
    var first = hits[0];
    var html = first.layer.gcPopup(first.props);
    if (hits.length > 1) html += "<small>" + (hits.length - 1) + " more feature(s) here: zoom in to separate them.</small>";
    return html;
  }

  gc.enablePicking = function (map) {
    map.on("click", function (e) {
      var html = hitsHtml(hitsAt(map, e.latlng, false));
      if (html) L.popup({ maxWidth: 360 }).setLatLng(e.latlng).setContent(html).openOn(map);
    });
  };

  // Clicks on a polygon layer (cluster hulls, hotspots) open its own popup, unless an
  // individual firm or asset is under the pointer: points draw on top, so they win.
  gc.preferPoints = function (map, polygons) {
    polygons.on("click", function (e) {
      var html = hitsHtml(hitsAt(map, e.latlng, true));
      if (html) L.popup({ maxWidth: 360 }).setLatLng(e.latlng).setContent(html).openOn(map);
    });
  };

  // -- small screens ----------------------------------------------------------------------
  gc.responsive = function (map, layerControl) {
    var small = window.matchMedia("(max-width: 640px)");
    function apply() {
      document.querySelectorAll("details.gc-fold").forEach(function (d) {
        if (small.matches) d.removeAttribute("open"); else d.setAttribute("open", "");
      });
      if (!layerControl) return;
      // Leaflet re-expands a control built with collapsed: false on every layer change
      layerControl.options.collapsed = small.matches;
      if (small.matches) layerControl.collapse(); else layerControl.expand();
    }
    if (layerControl) {
      // the toggle button expands the list (Leaflet); a click on the map folds it again
      // (on the map container: a click on a region or hull stops before the map's "click")
      var box = layerControl.getContainer();
      L.DomEvent.on(map.getContainer(), "pointerdown", function (ev) {
        if (small.matches && !box.contains(ev.target)) layerControl.collapse();
      });
    }
    apply();
    if (small.addEventListener) small.addEventListener("change", apply);
  };
})();
