// spinemets: measure on images. A slice viewer over the DICOM REST API (/api/v1/dicom/...): the series is read on
// the server (from a PACS the site allows), one slice at a time is drawn here with the window chosen, a click (or a
// centre typed in millimetres) turns into patient coordinates through the series' own matrix and the server measures.
// Every text shown comes from the server or from this file's fixed words; nothing is inserted as HTML.
(function () {
  "use strict";

  var API = "/api/v1/dicom/";
  var $ = function (id) { return document.getElementById(id); };
  var form = $("images-open");
  if (!form) { return; }
  var canvas = $("image");
  var ctx = canvas.getContext("2d");
  // gen: the series opened (answers for an earlier one are dropped); shown: the slice drawn, which a click measures;
  // busy: the latest measurement (an earlier answer is dropped)
  var state = { csrf: null, info: null, url: null, k: 0, shown: -1, slices: new Map(), order: [], center: 0,
                width: 1, roi: null, gen: 0, busy: 0, storing: false, corners: [], cornersK: -1, marks: [] };
  var LANDMARKS = [["anterior_superior", "anterior wall, upper endplate"],
                   ["anterior_inferior", "anterior wall, lower endplate"],
                   ["middle_superior", "middle, upper endplate"], ["middle_inferior", "middle, lower endplate"],
                   ["posterior_superior", "posterior wall, upper endplate"],
                   ["posterior_inferior", "posterior wall, lower endplate"]];
  var PAIR_LABELS = { "chemical-shift": "Opposed-phase series (DICOMweb address)",
                      "dixon": "Water-image series (DICOMweb address)" };

  function ApiError(message) { this.message = message; }

  function said(e) {  // never a script's own error text
    return e instanceof ApiError ? e.message : "Something went wrong on this page: reload it and try again.";
  }

  function showError(text) { $("images-error").textContent = text || ""; }

  function words(status, problem) {
    var detail = String((problem && problem.detail) || "");
    var field = problem && problem.field;
    if (field && detail.indexOf(field + ": ") === 0) { detail = detail.slice(field.length + 2); }
    if (status === 401) { return "Sign in first: the images are the patient's."; }
    if (status === 403) { return "Your account may not read images from the PACS."; }
    if (status === 502) { return "The PACS failed or could not be reached: try again, or ask the PACS team."; }
    if (status === 503) { return "Measuring on images is not available on this server (no user store)."; }
    if (detail.indexOf("is not one this site allows") >= 0) {
      return "This PACS address is not one this site allows: ask the administrator to add it.";
    }
    if ((status === 422 || status === 400) && detail) { return detail.charAt(0).toUpperCase() + detail.slice(1); }
    return "The server could not answer (" + status + ").";
  }

  function csrf() {
    return fetch("/api/v1/auth/me", { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) { $("images-signin").hidden = false; return false; }
      return response.json().then(function (me) { state.csrf = me.csrf_token; return true; });
    }).catch(function () { return false; });
  }

  function post(path, body, binary, retried) {
    return fetch(API + path, {
      method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": state.csrf || "" },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (response.ok) { return binary ? response.arrayBuffer() : response.json(); }
      return response.text().then(function (text) {
        var problem = null;
        try { problem = JSON.parse(text); } catch (e) { problem = null; }
        if (response.status === 403 && !retried && problem && problem.field === "csrf_token") {
          return csrf().then(function () { return post(path, body, binary, true); });  // a new session: once
        }
        if (response.status === 401) { $("images-signin").hidden = false; }
        throw new ApiError(words(response.status, problem));
      });
    }, function () { throw new ApiError("The server could not be reached: check the connection."); });
  }

  function measureKind() { return $("f-measure").value; }

  function syncFields() {
    var kind = measureKind();
    $("f-pair-field").hidden = !PAIR_LABELS[kind];
    if (PAIR_LABELS[kind]) { $("f-pair-label").textContent = PAIR_LABELS[kind]; }
    $("f-unit-field").hidden = kind !== "adc";
    $("f-reference-field").hidden = kind !== "height";
    $("height-tools").hidden = kind !== "height";
    $("store-sr").hidden = !(kind === "roi" && state.roi && $("measure-lines").childNodes.length);
    var next = LANDMARKS[state.marks.length];
    $("height-next").textContent = next ? "Click the " + next[1] + " (" + (state.marks.length + 1) + " of 6)." :
      "All six landmarks placed.";
  }

  // --- vertebral heights: six landmarks clicked in order, measured by the server ---------------------------------

  function addMark(point) {
    if (state.marks.length >= 6) { state.marks = []; }
    state.marks.push(point);
    syncFields();
    draw();
    if (state.marks.length === 6) { heights(); }
  }

  function heights() {
    var mine = ++state.busy;
    $("measure-lines").textContent = "";
    if (state.marks.length !== 6) { return; }
    var body = { points: {} };
    LANDMARKS.forEach(function (l, n) { body.points[l[0]] = state.marks[n]; });
    var text = $("f-reference").value.trim();
    if (text) {
      var heightsMm = text.split(",").map(function (x) { return Number(x.trim()); });
      if (heightsMm.some(function (h) { return !(h > 0 && h <= 100); })) {
        $("measure-status").textContent = "The expected heights must be numbers of millimetres above 0, separated by commas.";
        return;
      }
      body.reference_mm = heightsMm;
    }
    $("measure-status").textContent = "Measuring…";
    post("height", body).then(function (result) {
      if (mine !== state.busy) { return; }
      result.summary.concat(["Knowledge base " + result.kb_version + ". " + result.disclaimer]).forEach(function (line) {
        var li = document.createElement("li");
        li.textContent = line;
        $("measure-lines").appendChild(li);
      });
      $("measure-status").textContent = text ? "Heights against the expected " + text + " mm." :
        "Heights and ratios only: give the expected height to grade the loss.";
    }).catch(function (e) { if (mine === state.busy) { $("measure-status").textContent = said(e); } });
  }

  function drawMarks() {
    if (!state.marks.length || measureKind() !== "height") { return; }
    ctx.save();
    ctx.strokeStyle = "#ffbf47";
    ctx.fillStyle = "#ffbf47";
    ctx.lineWidth = Math.max(1, state.info.columns / 400);
    state.marks.forEach(function (p, n) {
      var v = voxelOf(p);
      ctx.fillRect(v[0], v[1], 1, 1);
      if (n % 2 === 1) {  // a wall: its upper and lower endplate points joined
        var u = voxelOf(state.marks[n - 1]);
        ctx.beginPath();
        ctx.moveTo(u[0] + 0.5, u[1] + 0.5);
        ctx.lineTo(v[0] + 0.5, v[1] + 0.5);
        ctx.stroke();
      }
    });
    ctx.restore();
  }

  // --- the image ---------------------------------------------------------------------------------------------------

  function fmt(x) { return Math.abs(x) >= 100 ? x.toFixed(0) : String(Number(x.toPrecision(4))); }

  function setWindow(center, width) {
    state.center = center;
    state.width = width;
    $("f-center").value = fmt(center);
    $("f-width").value = fmt(width);
    $("window-error").textContent = "";
  }

  function resetWindow() {
    var info = state.info;
    if (info.window) { setWindow(info.window[0], info.window[1]); }
    else { setWindow((info.value_range[0] + info.value_range[1]) / 2, Math.max(info.value_range[1] - info.value_range[0], 1)); }
  }

  function grey(info) {  // DICOM's VOI LUT functions (PS3.3 C.11.2.1.2), then MONOCHROME1 inverted
    var c = state.center, w = state.width, f = info.window_function;
    var map;
    if (f === "SIGMOID") {
      map = function (x) { return 255 / (1 + Math.exp(-4 * (x - c) / w)); };
    } else if (f === "LINEAR_EXACT" || w < 1) {
      map = function (x) { return (x - (c - w / 2)) / w * 255; };
    } else {
      map = function (x) {
        if (x <= c - 0.5 - (w - 1) / 2) { return 0; }
        if (x > c - 0.5 + (w - 1) / 2) { return 255; }
        return ((x - (c - 0.5)) / (w - 1) + 0.5) * 255;
      };
    }
    return info.inverted ? function (x) { return 255 - map(x); } : map;
  }

  function imageLabel(k) {
    var n = state.info.image_numbers[k];
    return (k + 1) + " of " + state.info.slices + (n !== null && n !== undefined ? " (image " + n + ")" : "");
  }

  function draw() {
    var info = state.info;
    var values = info && state.slices.get(state.k);
    if (!values) { return; }
    var image = ctx.createImageData(info.columns, info.rows);
    var map = grey(info);
    var px = image.data;
    for (var n = 0, p = 0; n < values.length; n++, p += 4) {
      px[p] = px[p + 1] = px[p + 2] = map(values[n]);
      px[p + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
    state.shown = state.k;
    $("slice-label").textContent = imageLabel(state.k);
    canvas.setAttribute("aria-label", "Slice " + imageLabel(state.k) + " of " + (info.description || "the series") +
      (state.roi ? ", with the region drawn" : ""));
    drawRoi();
  }

  function voxelOf(xyz) {  // patient (x, y, z) -> continuous (i, j, k): the affine's 3 x 3 solved by Cramer's rule
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

  function patientOf(i, j, k) {
    var a = state.info.affine;
    return [0, 1, 2].map(function (r) { return a[r][0] * i + a[r][1] * j + a[r][2] * k + a[r][3]; });
  }

  function path(points, closed) {  // corners in patient coordinates, drawn on the slice shown
    ctx.save();
    ctx.strokeStyle = "#ffbf47";
    ctx.fillStyle = "#ffbf47";
    ctx.lineWidth = Math.max(1, state.info.columns / 400);
    ctx.beginPath();
    points.forEach(function (p, n) {
      var v = voxelOf(p);
      if (n === 0) { ctx.moveTo(v[0] + 0.5, v[1] + 0.5); } else { ctx.lineTo(v[0] + 0.5, v[1] + 0.5); }
    });
    if (closed) { ctx.closePath(); }
    ctx.stroke();
    if (!closed) {
      points.forEach(function (p) { var v = voxelOf(p); ctx.fillRect(v[0], v[1], 1, 1); });
    }
    ctx.restore();
  }

  function drawRoi() {
    drawMarks();
    if (state.corners.length && state.cornersK === state.shown) { path(state.corners, false); }
    var roi = state.roi;
    if (!roi) { return; }
    if (roi.shape === "polygon") {
      if (roi.k === state.shown) { path(roi.points, true); }
      return;
    }
    var s = state.info.spacing_mm;
    var v = voxelOf(roi.center);
    var dz = (state.shown - v[2]) * s[2];
    var r = roi.shape === "circle" ? (Math.abs(state.shown - Math.round(v[2])) < 0.5 ? roi.radius : 0) :
      Math.sqrt(Math.max(roi.radius * roi.radius - dz * dz, 0));
    if (r <= 0) { return; }
    ctx.save();
    ctx.strokeStyle = "#ffbf47";
    ctx.lineWidth = Math.max(1, state.info.columns / 400);
    ctx.beginPath();
    ctx.ellipse(v[0] + 0.5, v[1] + 0.5, r / s[0], r / s[1], 0, 0, 2 * Math.PI);  // canvas pixel i spans [i, i + 1)
    ctx.stroke();
    ctx.restore();
  }

  function showSlice(k) {
    var info = state.info;
    if (!info) { return Promise.resolve(); }
    k = Math.max(0, Math.min(info.slices - 1, k));
    state.k = k;
    $("f-slice").value = String(k);
    if (state.slices.has(k)) { draw(); return Promise.resolve(); }
    $("slice-label").textContent = imageLabel(state.shown >= 0 ? state.shown : k) + ", loading " + (k + 1) + "…";
    var gen = state.gen;
    return post("slice", { series: state.url, index: k }, true).then(function (buffer) {
      if (gen !== state.gen) { return; }  // an answer for a series no longer open
      if (buffer.byteLength !== info.rows * info.columns * 4) {
        throw new ApiError("The server sent an image of the wrong size: reload the series.");
      }
      state.slices.set(k, new Float32Array(buffer));
      state.order.push(k);
      while (state.order.length > 48) { state.slices.delete(state.order.shift()); }
      if (k === state.k) { draw(); }
    }).catch(function (e) { if (gen === state.gen) { showError(said(e)); } });
  }

  // --- opening a series ------------------------------------------------------------------------------------------

  function open(event) {
    event.preventDefault();
    showError("");
    var url = $("f-series").value.trim();
    if (!url) { showError("Give the series' DICOMweb address."); $("f-series").focus(); return; }
    var gen = ++state.gen;
    state.busy++;
    csrf().then(function (ok) {
      if (!ok) { throw new ApiError("Sign in first: the images are the patient's."); }
      return post("series", { series: url });
    }).then(function (info) {
      if (gen !== state.gen) { return null; }
      state.info = info; state.url = url; state.slices = new Map(); state.order = []; state.roi = null;
      state.shown = -1;
      state.corners = [];
      state.marks = [];
      syncCorners();
      canvas.width = info.columns;
      canvas.height = info.rows;
      var ratio = (info.columns * info.spacing_mm[0]) / (info.rows * info.spacing_mm[1]);  // width / height in mm
      canvas.style.aspectRatio = String(ratio);
      canvas.style.maxWidth = "calc(78vh * " + ratio.toFixed(4) + ")";  // the whole image on the screen
      $("f-slice").max = String(info.slices - 1);
      $("series-line").textContent = (info.description ? info.description + ": " : "") + info.modality + ", " +
        info.slices + " slices of " + info.columns + " x " + info.rows + ", voxels " +
        info.spacing_mm.map(function (x) { return x.toFixed(2); }).join(" x ") + " mm" +
        (info.units ? ", values in " + info.units : ", signal intensity (no unit)") +
        ". Slices are counted along the stack; the image number is the PACS's. " + info.disclaimer;
      $("measure-lines").textContent = "";
      $("measure-status").textContent = "No region placed yet.";
      $("sr-status").textContent = "";
      resetWindow();
      $("viewer").hidden = false;
      syncFields();
      return showSlice(Math.floor(info.slices / 2));
    }).catch(function (e) { if (gen === state.gen) { showError(said(e)); } });
  }

  // --- measuring -----------------------------------------------------------------------------------------------

  function radius() {
    var value = $("f-radius").value.trim();
    var r = Number(value);
    if (value === "" || !(r > 0 && r <= 50)) { return null; }
    return r;
  }

  function measure() {
    var mine = ++state.busy;
    var roi = state.roi;
    $("measure-lines").textContent = "";
    $("sr-status").textContent = "";
    syncFields();
    var kind = measureKind();
    if (!roi || kind === "height") { return; }
    var body = regionBody(roi);
    var treated = $("f-treated").value;
    if (treated) { body.treated = treated === "true"; }
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
    post(kind, body).then(function (result) {
      if (mine !== state.busy) { return; }
      result.summary.concat(["Knowledge base " + result.kb_version + ". " + result.disclaimer]).forEach(function (line) {
        var li = document.createElement("li");
        li.textContent = line;
        $("measure-lines").appendChild(li);
      });
      $("measure-status").textContent = "Region at " + roi.center.map(function (c) { return c.toFixed(1); })
        .join(", ") + " mm (patient coordinates).";
      syncFields();
    }).catch(function (e) {
      if (mine === state.busy) { $("measure-status").textContent = said(e); }
    });
  }

  function regionBody(roi) {
    return roi.shape === "polygon" ? { shape: "polygon", points: roi.points } :
      { center: roi.center, radius_mm: roi.radius, shape: roi.shape };
  }

  function polygonMode() { return $("f-shape").value === "polygon"; }

  function syncCorners() {
    var n = state.corners.length;
    $("polygon-tools").hidden = !polygonMode() || measureKind() === "height";
    $("polygon-close").disabled = n < 3;
    $("polygon-count").textContent = n ? n + (n === 1 ? " corner" : " corners") + " placed" +
      (n < 3 ? " (at least 3)" : "") : "Click the corners of the region on one slice.";
  }

  function addCorner(point) {
    if (state.cornersK !== state.shown) { state.corners = []; state.cornersK = state.shown; }  // one slice only
    state.corners.push(point);
    syncCorners();
    draw();
  }

  function closePolygon() {
    if (state.corners.length < 3) { return; }
    state.roi = { shape: "polygon", points: state.corners.slice(), k: state.cornersK,
                  center: centroid(state.corners) };
    state.corners = [];
    syncCorners();
    draw();
    measure();
  }

  function centroid(points) {
    return [0, 1, 2].map(function (c) {
      return points.reduce(function (sum, p) { return sum + p[c]; }, 0) / points.length;
    });
  }

  function placeAt(center) {
    var r = radius();
    if (r === null) { $("measure-status").textContent = "The radius must be more than 0 and at most 50 mm."; return; }
    state.roi = { center: center, radius: r, shape: $("f-shape").value };
    $("f-at").value = center.map(function (c) { return c.toFixed(1); }).join(", ");
    draw();
    measure();
  }

  function place(event) {
    var info = state.info;
    if (!info || state.shown < 0) { return; }
    var rect = canvas.getBoundingClientRect();
    var i = (event.clientX - rect.left) / rect.width * info.columns - 0.5;  // pixel centres at .5
    var j = (event.clientY - rect.top) / rect.height * info.rows - 0.5;
    if (measureKind() === "height") { addMark(patientOf(i, j, state.shown)); return; }
    if (polygonMode()) { addCorner(patientOf(i, j, state.shown)); return; }
    placeAt(patientOf(i, j, state.shown));  // the slice drawn, the one clicked
  }

  function typedPlace(event) {
    event.preventDefault();
    var parts = $("f-at").value.split(",").map(function (p) { return p.trim(); });
    var xyz = parts.map(Number);
    if (!state.info || parts.length !== 3 || parts.some(function (p) { return p === ""; }) ||
        xyz.some(function (x) { return !isFinite(x); })) {
      $("measure-status").textContent = "Give the region's centre as three numbers x, y, z in millimetres.";
      return;
    }
    if (polygonMode()) {
      $("measure-status").textContent = "A typed centre places a sphere or a circle: choose one of them as the region.";
      return;
    }
    var v = voxelOf(xyz);
    showSlice(Math.round(v[2]));
    placeAt(xyz);
  }

  function storeSr() {
    if (!state.roi || state.storing) { return; }
    var roi = state.roi;
    var body = regionBody(roi);
    body.series = state.url;
    body.store = true;
    var treated = $("f-treated").value;
    if (treated) { body.treated = treated === "true"; }
    state.storing = true;
    $("store-sr").disabled = true;
    $("sr-status").textContent = "Storing…";
    post("sr", body, true).then(function () {
      $("sr-status").textContent = "Stored on the PACS with the study, as a structured report.";
    }).catch(function (e) { $("sr-status").textContent = said(e); }).then(function () {
      state.storing = false;
      $("store-sr").disabled = false;
    });
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
    var per = Math.max(state.info.value_range[1] - state.info.value_range[0], 1) / 500;
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
    var cText = $("f-center").value.trim(), wText = $("f-width").value.trim();
    var c = Number(cText), w = Number(wText);
    if (cText === "" || !isFinite(c)) {
      $("window-error").textContent = "Window centre must be a number: kept at " + fmt(state.center) + ".";
      $("f-center").value = fmt(state.center);
      return;
    }
    if (wText === "" || !isFinite(w) || w <= 0) {
      $("window-error").textContent = "Window width must be a number above 0: kept at " + fmt(state.width) + ".";
      $("f-width").value = fmt(state.width);
      return;
    }
    $("window-error").textContent = "";
    state.center = c;
    state.width = w;
    draw();
  }
  $("f-center").addEventListener("change", typedWindow);
  $("f-width").addEventListener("change", typedWindow);
  $("window-reset").addEventListener("click", function () { resetWindow(); draw(); });
  function remeasure() {
    if (measureKind() === "height") { syncFields(); draw(); if (state.marks.length === 6) { heights(); } return; }
    if (state.roi) { measure(); } else { syncFields(); }
  }
  $("f-measure").addEventListener("change", remeasure);
  $("f-unit").addEventListener("change", remeasure);
  $("f-treated").addEventListener("change", remeasure);
  $("f-pair").addEventListener("change", remeasure);
  function reshape() {
    state.corners = [];
    syncCorners();
    if (polygonMode()) { draw(); return; }  // corners are clicked, then closed
    if (!state.roi) { return; }
    var r = radius();
    if (r === null) { $("measure-status").textContent = "The radius must be more than 0 and at most 50 mm."; return; }
    state.roi = { center: state.roi.center, radius: r, shape: $("f-shape").value };
    draw();
    measure();
  }
  $("polygon-close").addEventListener("click", closePolygon);
  $("f-reference").addEventListener("change", remeasure);
  $("height-clear").addEventListener("click", function () {
    state.marks = [];
    $("measure-lines").textContent = "";
    syncFields();
    draw();
  });
  $("polygon-clear").addEventListener("click", function () { state.corners = []; syncCorners(); draw(); });
  $("f-radius").addEventListener("change", reshape);
  $("f-shape").addEventListener("change", reshape);
  $("place-form").addEventListener("submit", typedPlace);
  $("store-sr").addEventListener("click", storeSr);
  form.addEventListener("submit", open);
  syncFields();
  syncCorners();
})();
