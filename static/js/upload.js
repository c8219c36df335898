/* GPUX Portal: the upload page of a draft version (templates/marketplace/upload.html). Plain JavaScript.
 *
 * Files dropped on (or chosen in) the drop zone go up one after the other, through the catalog API, signed in by
 * the session (DRF SessionAuthentication) with the CSRF token in the X-CSRFToken header:
 *   - small files: one multipart POST to .../files/ (XMLHttpRequest, so that the progress bar follows the bytes);
 *   - large files: the resumable protocol of docs/api/models.md: the SHA-256 is computed here first (streamed,
 *     a slice at a time), a session is opened with {path, size, sha256}, chunks are PATCHed at Upload-Offset
 *     (a 409 names the offset to resume from; a broken connection asks the session where it stands), then
 *     POST complete verifies size and digest (a 202 for a large file: its job is polled, "verifying n %").
 * After each file the page's files-and-validation panel is refreshed (the "upload-done" event, htmx).
 */
(function () {
  "use strict";

  var configElement = document.getElementById("upload-config");
  if (!configElement) return;
  var config = JSON.parse(configElement.textContent);
  var zone = document.getElementById("drop-zone");
  var input = document.getElementById("upload-input");
  var folderInput = document.getElementById("upload-folder");
  var list = document.getElementById("upload-list");
  var template = document.getElementById("upload-item-template");
  var queue = [];
  var busy = false;
  var MAX_RETRIES = 5;
  var HASH_SLICE = 4 * 1024 * 1024;

  function csrfToken() {
    try {
      var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
      if (headers["X-CSRFToken"]) return headers["X-CSRFToken"];
    } catch (e) { /* fall back to the cookie */ }
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  // --- SHA-256, incremental (FIPS 180-4), so that a file of several GB is hashed without holding it in memory --
  var K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ]);

  // Int32 arithmetic throughout (values stay small integers for the JIT); hex() reads them back unsigned.
  function Sha256() {
    this.h = new Int32Array([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
    ]);
    this.w = new Int32Array(64);
    this.buffer = new Uint8Array(64);
    this.buffered = 0;
    this.length = 0; // bytes so far
  }

  Sha256.prototype.block = function (bytes, offset) {
    var w = this.w, h = this.h, i, j, x, y, t1, t2;
    for (i = 0; i < 16; i++) {
      j = offset + (i << 2);
      w[i] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
    }
    for (i = 16; i < 64; i++) {
      x = w[i - 15];
      y = w[i - 2];
      w[i] = (w[i - 16] + (((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) + w[i - 7] +
        (((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10))) | 0;
    }
    var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (i = 0; i < 64; i++) {
      t1 = (k + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
        ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
        ((a & b) ^ (a & c) ^ (b & c))) | 0;
      k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + k) | 0;
  };

  Sha256.prototype.update = function (bytes) {
    var offset = 0, n = bytes.length;
    this.length += n;
    if (this.buffered) {
      var take = Math.min(64 - this.buffered, n);
      this.buffer.set(bytes.subarray(0, take), this.buffered);
      this.buffered += take;
      offset = take;
      if (this.buffered < 64) return;
      this.block(this.buffer, 0);
      this.buffered = 0;
    }
    for (; offset + 64 <= n; offset += 64) this.block(bytes, offset);
    if (offset < n) {
      this.buffer.set(bytes.subarray(offset), 0);
      this.buffered = n - offset;
    }
  };

  Sha256.prototype.hex = function () {
    var bits = this.length * 8;
    var padding = new Uint8Array(((this.buffered < 56) ? 56 : 120) - this.buffered + 8);
    padding[0] = 0x80;
    var high = Math.floor(bits / 0x100000000), low = bits >>> 0, end = padding.length;
    padding[end - 8] = high >>> 24; padding[end - 7] = high >>> 16; padding[end - 6] = high >>> 8; padding[end - 5] = high;
    padding[end - 4] = low >>> 24; padding[end - 3] = low >>> 16; padding[end - 2] = low >>> 8; padding[end - 1] = low;
    var length = this.length;
    this.update(padding);
    this.length = length;
    var out = "";
    for (var i = 0; i < 8; i++) out += ("00000000" + (this.h[i] >>> 0).toString(16)).slice(-8);
    return out;
  };

  function readSlice(blob) {
    if (blob.arrayBuffer) return blob.arrayBuffer();
    return new Promise(function (resolve, reject) {
      var reader = new FileReader();
      reader.onload = function () { resolve(reader.result); };
      reader.onerror = function () { reject(reader.error); };
      reader.readAsArrayBuffer(blob);
    });
  }

  var NATIVE_HASH_LIMIT = 512 * 1024 * 1024;

  function hexOf(buffer) {
    var bytes = new Uint8Array(buffer), out = "";
    for (var i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    return out;
  }

  // The browser's own SHA-256 (fast, but whole-buffer) up to NATIVE_HASH_LIMIT; the streamed one above beyond.
  function sha256OfFile(file, onProgress) {
    if (window.crypto && window.crypto.subtle && file.size <= NATIVE_HASH_LIMIT) {
      return readSlice(file).then(function (buffer) {
        return window.crypto.subtle.digest("SHA-256", buffer);
      }).then(function (digest) {
        onProgress(1);
        return hexOf(digest);
      });
    }
    return sha256Streamed(file, onProgress);
  }

  function sha256Streamed(file, onProgress) {
    var hash = new Sha256();
    var position = 0;
    function next() {
      if (position >= file.size) return Promise.resolve(hash.hex());
      var end = Math.min(position + HASH_SLICE, file.size);
      return readSlice(file.slice(position, end)).then(function (buffer) {
        hash.update(new Uint8Array(buffer));
        position = end;
        onProgress(position / file.size);
        return next();
      });
    }
    return next();
  }

  // --- the list of files and their progress bars --------------------------------------------------------------
  function addItem(file, path) {
    var node = template.content.firstElementChild.cloneNode(true);
    node.querySelector(".upload-name").textContent = path + " (" + humanSize(file.size) + ")";
    node.dataset.path = path;
    list.hidden = false;
    list.appendChild(node);
    return {
      node: node,
      bar: node.querySelector(".progress-bar"),
      progress: node.querySelector(".progress"),
      state: node.querySelector(".upload-state"),
      error: node.querySelector(".upload-error")
    };
  }

  function show(item, fraction, label, style) {
    var percent = Math.max(0, Math.min(100, Math.round(fraction * 100)));
    item.bar.style.width = percent + "%";
    item.progress.setAttribute("aria-valuenow", String(percent));
    item.state.textContent = label + (style === "done" || style === "failed" ? "" : " " + percent + " %");
    item.node.dataset.state = style;
    item.bar.className = "progress-bar" +
      (style === "done" ? " bg-success" : style === "failed" ? " bg-danger" :
        style === "hashing" ? " bg-info progress-bar-striped progress-bar-animated" : "");
  }

  function fail(item, message) {
    show(item, 1, "failed", "failed");
    item.error.hidden = false;
    item.error.textContent = message;
  }

  function humanSize(bytes) {
    var units = ["bytes", "KB", "MB", "GB", "TB"], i = 0, value = bytes;
    while (value >= 1024 && i < units.length - 1) { value /= 1024; i++; }
    return (i === 0 ? value : value.toFixed(1)) + " " + units[i];
  }

  // Messages from the API's error shape: {"detail": "..."} or {"field": ["...", ...], "code": ...}.
  function errorMessage(xhr) {
    var data = null;
    try { data = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
    if (!data) return "The server answered " + xhr.status + (xhr.statusText ? " " + xhr.statusText : "") + ".";
    if (typeof data.detail === "string") return data.detail;
    var parts = [];
    Object.keys(data).forEach(function (key) {
      if (key === "code" || key === "codes") return;
      var value = data[key];
      var text = Array.isArray(value) ? value.join(" ") : (typeof value === "string" ? value : JSON.stringify(value));
      parts.push((key === "non_field_errors" ? "" : key + ": ") + text);
    });
    return parts.join(" ") || "The upload was refused (" + xhr.status + ").";
  }

  // --- requests -------------------------------------------------------------------------------------------------
  function request(method, url, body, headers, onUploadProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      Object.keys(headers || {}).forEach(function (name) { xhr.setRequestHeader(name, headers[name]); });
      if (onUploadProgress && xhr.upload) {
        xhr.upload.onprogress = function (event) { if (event.lengthComputable) onUploadProgress(event.loaded, event.total); };
      }
      xhr.onload = function () { resolve(xhr); };
      xhr.onerror = function () { reject(new Error("The connection broke.")); };
      xhr.onabort = function () { reject(new Error("The upload was aborted.")); };
      xhr.send(body === undefined ? null : body);
    });
  }

  function json(xhr) {
    try { return JSON.parse(xhr.responseText); } catch (e) { return {}; }
  }

  function uploadSmall(file, path, item) {
    var form = new FormData();
    form.append("file", file, file.name);
    form.append("path", path);
    show(item, 0, "uploading", "uploading");
    return request("POST", config.filesUrl, form, {}, function (loaded, total) {
      show(item, loaded / total, "uploading", "uploading");
    }).then(function (xhr) {
      if (xhr.status !== 201) throw new Error(errorMessage(xhr));
      return json(xhr);
    });
  }

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function uploadLarge(file, path, item) {
    show(item, 0, "computing SHA-256", "hashing");
    return sha256OfFile(file, function (fraction) { show(item, fraction, "computing SHA-256", "hashing"); })
      .then(function (sha256) {
        var body = JSON.stringify({ path: path, size: file.size, sha256: sha256 });
        return request("POST", config.sessionsUrl, body, { "Content-Type": "application/json" });
      })
      .then(function (xhr) {
        if (xhr.status !== 201) throw new Error(errorMessage(xhr));
        var session = json(xhr);
        return sendChunks(file, session, item, session.offset || 0, 0).then(function () {
          show(item, 1, "verifying", "uploading");
          return request("POST", session.complete_url, null, {});
        });
      })
      .then(function (xhr) {
        if (xhr.status === 202) return waitForJob(json(xhr), item); // a large file: verified by a job
        if (xhr.status !== 201) throw new Error(errorMessage(xhr));
        return json(xhr);
      });
  }

  // 202 from complete: a job verifies the bytes; poll it (GET /api/v1/jobs/{uuid}/) on the same progress bar.
  var POLL_MS = 1000;

  function waitForJob(session, item) {
    var url = session.job && session.job.url;
    if (!url) throw new Error("The server accepted the upload but named no job to follow.");
    function poll() {
      return request("GET", url, null, {}).then(function (xhr) {
        if (xhr.status !== 200) throw new Error(errorMessage(xhr));
        var job = json(xhr);
        if (job.status === "succeeded") return job.result || {};
        if (job.status === "failed" || job.status === "cancelled") {
          throw new Error((job.error || "The verification job " + job.status + ".").replace(/^UploadVerificationFailed: /, ""));
        }
        show(item, job.progress || 0, "verifying", "uploading");
        return sleep(POLL_MS).then(poll);
      }, function () { // a broken connection while polling: the job goes on; ask again
        return sleep(POLL_MS * 3).then(poll);
      });
    }
    show(item, 0, "verifying", "uploading");
    return poll();
  }

  function sendChunks(file, session, item, offset, retries) {
    if (offset >= file.size) return Promise.resolve();
    var end = Math.min(offset + config.chunkSize, file.size);
    var headers = { "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" };
    show(item, offset / file.size, "uploading", "uploading");
    return request("PATCH", session.upload_url, file.slice(offset, end), headers, function (loaded) {
      show(item, (offset + loaded) / file.size, "uploading", "uploading");
    }).then(function (xhr) {
      if (xhr.status === 200 || xhr.status === 204) {
        var next = parseInt(xhr.getResponseHeader("Upload-Offset") || json(xhr).offset, 10);
        return sendChunks(file, session, item, isNaN(next) ? end : next, 0);
      }
      if (xhr.status === 409) { // resume where the server says it stands
        var expected = parseInt(xhr.getResponseHeader("Upload-Offset") || json(xhr).expected_offset, 10);
        if (!isNaN(expected) && retries < MAX_RETRIES) return sendChunks(file, session, item, expected, retries + 1);
      }
      throw new Error(errorMessage(xhr));
    }, function (error) {
      if (retries >= MAX_RETRIES) throw error;
      show(item, offset / file.size, "connection lost, resuming", "uploading");
      return sleep(1000 * Math.pow(2, retries)).then(function () {
        return request("GET", session.upload_url, null, {});
      }).then(function (xhr) {
        var resumeAt = parseInt(xhr.getResponseHeader("Upload-Offset") || json(xhr).offset, 10);
        return sendChunks(file, session, item, isNaN(resumeAt) ? offset : resumeAt, retries + 1);
      }, function () {
        return sendChunks(file, session, item, offset, retries + 1);
      });
    });
  }

  // --- the queue ------------------------------------------------------------------------------------------------
  function folder() {
    var value = (folderInput && folderInput.value || "").trim().replace(/^\/+|\/+$/g, "");
    return value ? value + "/" : "";
  }

  function enqueue(files) {
    for (var i = 0; i < files.length; i++) {
      var path = folder() + files[i].name;
      queue.push({ file: files[i], path: path, item: addItem(files[i], path) });
    }
    pump();
  }

  function pump() {
    if (busy || !queue.length) return;
    busy = true;
    var job = queue.shift();
    var upload = job.file.size > config.smallFileLimit ? uploadLarge : uploadSmall;
    upload(job.file, job.path, job.item)
      .then(function () { show(job.item, 1, "uploaded", "done"); })
      .catch(function (error) { fail(job.item, error.message || String(error)); })
      .then(function () {
        busy = false;
        document.body.dispatchEvent(new CustomEvent("upload-done", { detail: { path: job.path } }));
        pump();
      });
  }

  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      zone.classList.add("drag-over");
    });
  });
  ["dragleave", "dragend"].forEach(function (name) {
    zone.addEventListener(name, function () { zone.classList.remove("drag-over"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    zone.classList.remove("drag-over");
    if (event.dataTransfer && event.dataTransfer.files.length) enqueue(event.dataTransfer.files);
  });
  input.addEventListener("change", function () {
    if (input.files.length) enqueue(Array.prototype.slice.call(input.files));
    input.value = "";
  });
  window.addEventListener("beforeunload", function (event) {
    if (busy || queue.length) { event.preventDefault(); event.returnValue = ""; }
  });
  window.gpuxUpload = { Sha256: Sha256, sha256OfFile: sha256OfFile, sha256Streamed: sha256Streamed };
})();
