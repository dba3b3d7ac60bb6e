#!/usr/bin/env bash
# One-command set-up on Debian 12: system packages (QGIS, GDAL/rasterio, Xvfb), then a venv that
# sees QGIS's bindings, with torch/torchvision and the test tools pinned in requirements.txt.
# Idempotent: a second run only checks and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(qgis python3-qgis qgis-providers python3-rasterio python3-sklearn python3-venv
              python3-pip xvfb xauth gdal-bin make)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv (with system site-packages, so QGIS and rasterio are visible)"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi

# numpy stays at the system's version: QGIS's and GDAL's bindings are built against numpy 1.x.
sysnumpy=$(/usr/bin/python3 -c 'import numpy; print(numpy.__version__)')
printf 'numpy==%s\n' "$sysnumpy" > .venv/constraints.txt

stamp=.venv/.requirements.sha
want=$(cat requirements.txt .venv/constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages from requirements.txt"
  .venv/bin/python -m pip install -q -r requirements.txt -c .venv/constraints.txt
  echo "$want" > "$stamp"
fi

.venv/bin/python - <<'PY'
import numpy, rasterio, torch, torchvision, qgis.core  # noqa: F401  (import check of the whole stack)
print(f"setup: ok (numpy {numpy.__version__}, rasterio {rasterio.__version__}, torch {torch.__version__}, "
      f"torchvision {torchvision.__version__}, QGIS {qgis.core.Qgis.QGIS_VERSION})")
PY
