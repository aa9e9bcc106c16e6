#!/bin/sh
# Debian packages weft's tests and lab need. Idempotent: installs only what is missing.
set -eu
PKGS="iproute2 iputils-ping iperf3 tshark ethtool nftables iptables procps psmisc python3 make g++ kmod etcd-server etcd-client bird2 frr gobgpd podman runc containernetworking-plugins busybox-static sockperf systemd"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
  echo "deps: all present"
fi
