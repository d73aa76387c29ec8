"""Web map (folium page + vendored static assets)."""
