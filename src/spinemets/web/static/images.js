// spinemets: measure on images. A slice viewer over the DICOM REST API (/api/v1/dicom/...): the series is read on
// the server (from a PACS the site allows), one slice at a time is drawn here with the window chosen, a click turns
// the pixel into patient coordinates (the series' own affine matrix) and asks the server for the measurement.
// Every text shown comes from the server or from this file's fixed words; nothing is inserted as HTML.
(function () {
  "use strict";

  var API = "/api/v1/dicom/";
  var $ = function (id) { return document.getElementById(id); };
  var form = $("images-open");
  if (!form) { return; }
  var canvas = $("image");
  var ctx = canvas.getContext("2d");
  var state = { csrf: null, info: null, url: null, k: 0, slices: new Map(), order: [], center: 0, width: 1,
                roi: null, busy: 0, seq: 0 };
  var PAIR_LABELS = { "chemical-shift": "Opposed-phase series (DICOMweb address)",
                      "dixon": "Water-image series (DICOMweb address)" };

  function showError(text) { $("images-error").textContent = text || ""; }

  function problemText(response) {
    return response.text().then(function (body) {
      try {
        var p = JSON.parse(body);
        return p.detail || p.title || ("the server answered " + response.status);
      } catch (e) {
        return "the server answered " + response.status;
      }
    });
  }

  function post(path, body, binary) {
    return fetch(API + path, {
      method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": state.csrf || "" },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (response.status === 401) { $("images-signin").hidden = false; }
      if (!response.ok) { return problemText(response).then(function (t) { throw new Error(t); }); }
      return binary ? response.arrayBuffer() : response.json();
    });
  }

  function signedIn() {
    return fetch("/api/v1/auth/me", { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) { $("images-signin").hidden = false; return false; }
      return response.json().then(function (me) { state.csrf = me.csrf_token; return true; });
    }).catch(function () { return false; });
  }

  function measureKind() { return $("f-measure").value; }

  function syncFields() {
    var kind = measureKind();
    $("f-pair-field").hidden = !PAIR_LABELS[kind];
    if (PAIR_LABELS[kind]) { $("f-pair-label").textContent = PAIR_LABELS[kind]; }
    $("f-unit-field").hidden = kind !== "adc";
    $("store-sr").hidden = !(kind === "roi" && state.roi);
  }

  // --- the image ---------------------------------------------------------------------------------------------------

  function fmt(x) { return Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(3); }

  function setWindow(center, width) {
    state.center = center;
    state.width = Math.max(width, 1e-6);
    $("f-center").value = fmt(center);
    $("f-width").value = fmt(state.width);
  }

  function resetWindow() {
    var info = state.info;
    if (info.window) { setWindow(info.window[0], info.window[1]); }
    else { setWindow((info.value_range[0] + info.value_range[1]) / 2, info.value_range[1] - info.value_range[0] || 1); }
  }

  function draw() {
    var info = state.info;
    var values = state.slices.get(state.k);
    if (!info || !values) { return; }
    var image = ctx.createImageData(info.columns, info.rows);
    var low = state.center - state.width / 2;
    var scale = 255 / state.width;
    var px = image.data;
    for (var n = 0, p = 0; n < values.length; n++, p += 4) {
      var g = (values[n] - low) * scale;
      g = g < 0 ? 0 : (g > 255 ? 255 : g);
      px[p] = px[p + 1] = px[p + 2] = g;
      px[p + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
    drawRoi();
  }

  function voxelOf(xyz) {  // patient (x, y, z) -> continuous (i, j, k): the affine's inverse, by solving its 3 x 3
    var a = state.info.affine;
    var m = [[a[0][0], a[0][1], a[0][2]], [a[1][0], a[1][1], a[1][2]], [a[2][0], a[2][1], a[2][2]]];
    var d = [xyz[0] - a[0][3], xyz[1] - a[1][3], xyz[2] - a[2][3]];
    var det = function (q) {
      return q[0][0] * (q[1][1] * q[2][2] - q[1][2] * q[2][1]) - q[0][1] * (q[1][0] * q[2][2] - q[1][2] * q[2][0]) +
        q[0][2] * (q[1][0] * q[2][1] - q[1][1] * q[2][0]);
    };
    var whole = det(m);
    return [0, 1, 2].map(function (c) {
      var q = m.map(function (row, r) { var copy = row.slice(); copy[c] = d[r]; return copy; });
      return det(q) / whole;
    });
  }

  function drawRoi() {
    var roi = state.roi;
    if (!roi) { return; }
    var s = state.info.spacing_mm;
    var v = voxelOf(roi.center);
    var dz = (state.k - v[2]) * s[2];
    var r = roi.shape === "circle" ? (Math.abs(state.k - v[2]) < 0.5 ? roi.radius : 0) :
      Math.sqrt(Math.max(roi.radius * roi.radius - dz * dz, 0));
    if (r <= 0) { return; }
    ctx.save();
    ctx.strokeStyle = "#ffbf47";
    ctx.lineWidth = Math.max(1, state.info.columns / 400);
    ctx.beginPath();
    ctx.ellipse(v[0] + 0.5, v[1] + 0.5, r / s[0], r / s[1], 0, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.restore();
  }

  function showSlice(k) {
    var info = state.info;
    k = Math.max(0, Math.min(info.slices - 1, k));
    state.k = k;
    $("f-slice").value = String(k);
    $("slice-label").textContent = (k + 1) + " of " + info.slices;
    if (state.slices.has(k)) { draw(); return Promise.resolve(); }
    var mine = ++state.seq;
    return post("slice", { series: state.url, index: k }, true).then(function (buffer) {
      state.slices.set(k, new Float32Array(buffer));
      state.order.push(k);
      while (state.order.length > 48) { state.slices.delete(state.order.shift()); }
      if (mine === state.seq || k === state.k) { draw(); }
    }).catch(function (e) { showError(e.message); });
  }

  // --- opening a series ------------------------------------------------------------------------------------------

  function open(event) {
    event.preventDefault();
    showError("");
    var url = $("f-series").value.trim();
    if (!url) { showError("Give the series' DICOMweb address."); $("f-series").focus(); return; }
    signedIn().then(function (ok) {
      if (!ok) { showError("Sign in first: the images are the patient's."); return null; }
      return post("series", { series: url }).then(function (info) {
        state.info = info; state.url = url; state.slices = new Map(); state.order = []; state.roi = null;
        canvas.width = info.columns;
        canvas.height = info.rows;
        var ratio = (info.columns * info.spacing_mm[0]) / (info.rows * info.spacing_mm[1]);  // width / height in mm
        canvas.style.aspectRatio = String(ratio);
        canvas.style.maxWidth = "calc(78vh * " + ratio.toFixed(4) + ")";  // the whole image on the screen
        $("f-slice").max = String(info.slices - 1);
        $("series-line").textContent = (info.description ? info.description + ": " : "") + info.modality + ", " +
          info.slices + " slices of " + info.columns + " x " + info.rows + ", voxels " +
          info.spacing_mm.map(function (x) { return x.toFixed(2); }).join(" x ") + " mm" +
          (info.units ? ", values in " + info.units : ", signal intensity (no unit)") + ". " + info.disclaimer;
        $("measure-lines").textContent = "";
        $("measure-status").textContent = "No region placed yet.";
        $("sr-status").textContent = "";
        resetWindow();
        $("viewer").hidden = false;
        syncFields();
        return showSlice(Math.floor(info.slices / 2));
      });
    }).catch(function (e) { showError(e.message); });
  }

  // --- measuring -----------------------------------------------------------------------------------------------

  function roiBody() {
    var body = { center: state.roi.center, radius_mm: state.roi.radius, shape: state.roi.shape };
    var treated = $("f-treated").value;
    if (treated) { body.treated = treated === "true"; }
    return body;
  }

  function measure() {
    var kind = measureKind();
    var body = roiBody();
    if (kind === "roi" || kind === "adc") { body.series = state.url; }
    if (kind === "adc") {
      if (!$("f-unit").value) { $("measure-status").textContent = "Choose the unit of the ADC map's values."; return; }
      body.unit = $("f-unit").value;
    }
    if (PAIR_LABELS[kind]) {
      var pair = $("f-pair").value.trim();
      if (!pair) { $("measure-status").textContent = "Give the " + $("f-pair-label").textContent.toLowerCase() + "."; return; }
      if (kind === "chemical-shift") { body.in_phase = state.url; body.opposed_phase = pair; }
      else { body.fat = state.url; body.water = pair; }
    }
    $("measure-status").textContent = "Measuring…";
    $("measure-lines").textContent = "";
    $("sr-status").textContent = "";
    var mine = ++state.busy;
    post(kind, body).then(function (result) {
      if (mine !== state.busy) { return; }
      result.summary.concat(["Knowledge base " + result.kb_version + ". " + result.disclaimer]).forEach(function (line) {
        var li = document.createElement("li");
        li.textContent = line;
        $("measure-lines").appendChild(li);
      });
      $("measure-status").textContent = "Region at " + state.roi.center.map(function (c) { return c.toFixed(1); })
        .join(", ") + " mm (patient coordinates).";
      syncFields();
    }).catch(function (e) {
      if (mine === state.busy) { $("measure-status").textContent = e.message; }
    });
  }

  function place(event) {
    var info = state.info;
    if (!info) { return; }
    var radius = Number($("f-radius").value);
    if (!(radius > 0 && radius <= 50)) { $("measure-status").textContent = "The radius must be more than 0 and at most 50 mm."; return; }
    var rect = canvas.getBoundingClientRect();
    var i = (event.clientX - rect.left) / rect.width * info.columns - 0.5;  // pixel centres at .5
    var j = (event.clientY - rect.top) / rect.height * info.rows - 0.5;
    var a = info.affine;
    var center = [0, 1, 2].map(function (r) { return a[r][0] * i + a[r][1] * j + a[r][2] * state.k + a[r][3]; });
    state.roi = { center: center, radius: radius, shape: $("f-shape").value };
    draw();
    measure();
  }

  function storeSr() {
    if (!state.roi) { return; }
    var body = roiBody();
    body.series = state.url;
    body.store = true;
    $("sr-status").textContent = "Storing…";
    post("sr", body, true).then(function () {
      $("sr-status").textContent = "Stored on the PACS with the study, as a structured report.";
    }).catch(function (e) { $("sr-status").textContent = e.message; });
  }

  // --- input -------------------------------------------------------------------------------------------------------

  var drag = null;
  canvas.addEventListener("mousedown", function (e) {
    drag = { x: e.clientX, y: e.clientY, center: state.center, width: state.width, moved: false };
  });
  window.addEventListener("mousemove", function (e) {
    if (!drag || !state.info) { return; }
    var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) { return; }
    drag.moved = true;
    var per = (state.info.value_range[1] - state.info.value_range[0] || 1) / 500;
    setWindow(drag.center - dy * per, Math.max(drag.width + dx * per, per));
    draw();
  });
  window.addEventListener("mouseup", function (e) {
    var was = drag;
    drag = null;
    if (was && !was.moved && e.target === canvas) { place(e); }
  });
  canvas.addEventListener("keydown", function (e) {
    if (!state.info) { return; }
    if (e.key === "ArrowUp" || e.key === "PageUp") { e.preventDefault(); showSlice(state.k + 1); }
    if (e.key === "ArrowDown" || e.key === "PageDown") { e.preventDefault(); showSlice(state.k - 1); }
  });
  canvas.addEventListener("wheel", function (e) {
    if (!state.info) { return; }
    e.preventDefault();
    showSlice(state.k + (e.deltaY > 0 ? 1 : -1));
  }, { passive: false });
  $("f-slice").addEventListener("input", function () { showSlice(Number($("f-slice").value)); });
  function typedWindow() {
    var c = Number($("f-center").value), w = Number($("f-width").value);
    if (isFinite(c) && isFinite(w) && w > 0) { state.center = c; state.width = w; draw(); }
  }
  $("f-center").addEventListener("change", typedWindow);
  $("f-width").addEventListener("change", typedWindow);
  $("window-reset").addEventListener("click", function () { resetWindow(); draw(); });
  $("f-measure").addEventListener("change", function () { syncFields(); if (state.roi) { measure(); } });
  $("f-unit").addEventListener("change", function () { if (state.roi) { measure(); } });
  $("f-treated").addEventListener("change", function () { if (state.roi) { measure(); } });
  $("store-sr").addEventListener("click", storeSr);
  form.addEventListener("submit", open);
  syncFields();
})();
