#!/bin/sh
# The `certs` service of compose.yaml: makes the cluster CA and every certificate the
# cluster needs, once. The CA and its key stay in the `ca` volume (this service only);
# the certificates and their keys, never ca.key, are copied to the `certs` volume that
# the nodes and the gateway mount read-only. Running it again issues only what is missing.
set -eu

# Overridable only to try the script outside the container.
ca_dir=${FLASHSTOCK_CA_DIR:-/var/lib/flashstock/ca}
out=${FLASHSTOCK_CERTS_OUT:-/etc/flashstock/certs}

[ -f "$ca_dir/ca.pem" ] || invctl certs init --dir "$ca_dir"
for id in 1 2 3; do
    # The address must be what node$id advertises in compose/node$id.toml.
    [ -f "$ca_dir/node-$id.pem" ] || invctl certs node --dir "$ca_dir" --id "$id" --addr "node$id:700$id"
done
# Names for serving HTTPS, if [https] is turned on in compose/gateway.toml.
[ -f "$ca_dir/gateway.pem" ] || invctl certs gateway --dir "$ca_dir" --host gateway,localhost
[ -f "$ca_dir/admin-ops.pem" ] || invctl certs admin --dir "$ca_dir" --name ops

for file in "$ca_dir"/*.pem "$ca_dir"/*.key; do
    [ "$(basename "$file")" = ca.key ] && continue
    cp -p "$file" "$out/"
done
echo "certificates in $out:"
ls -l "$out"
