// The hub's maps (Leaflet, shipped in leaflet/): the places of sightings, or one person's track.
// Data comes from the page's #map-data block; tiles from the configured URL, else none (a plain grid).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("map");
  var data = document.getElementById("map-data");
  if (!box || !data || !window.L) { return; }
  var content = JSON.parse(data.textContent);
  var map = L.map(box, { attributionControl: true });
  map.attributionControl.setPrefix(false);
  if (box.dataset.tileUrl) {
    L.tileLayer(box.dataset.tileUrl, { attribution: box.dataset.attribution, maxZoom: 19 }).addTo(map);
  }
  var bounds = [];
  function label(marker, text) {  // as text, never HTML: names come from the devices
    var span = document.createElement("span");
    span.textContent = text;
    marker.bindTooltip(span, { permanent: true, direction: "right", offset: [8, 0] });
  }
  (content.places || []).forEach(function (place) {
    var marker = L.circleMarker([place.lat, place.lon], {
      radius: 6 + Math.min(12, Math.sqrt(place.known + place.unknown)),
      color: place.known ? "#c62828" : "#1f6feb", weight: 2, fillOpacity: 0.5
    }).addTo(map);
    label(marker, place.name + " · " + place.known + " known, " + place.unknown + " unknown");
    bounds.push([place.lat, place.lon]);
  });
  var track = content.track || [];
  for (var i = 0; i < track.length; i++) {
    var point = track[i];
    var here = [point.lat, point.lon];
    if (i > 0) {
      L.polyline([[track[i - 1].lat, track[i - 1].lon], here], {
        color: point.impossible ? "#c62828" : "#1f6feb", weight: point.impossible ? 4 : 2,
        dashArray: point.impossible ? "6 6" : null
      }).addTo(map);
    }
    label(L.circleMarker(here, { radius: 7, color: point.impossible ? "#c62828" : "#1d2129" }).addTo(map), point.label);
    bounds.push(here);
  }
  if (bounds.length) { map.fitBounds(bounds, { padding: [60, 60], maxZoom: 15 }); } else { map.setView([0, 0], 2); }
});
