# What docs/walkthrough.md promises beyond its shown outputs; run by tests/docs/run_doc.sh in the
# page's shell after its last block (the daemon has stopped, so the CLI opens the data dir).
[ "$(factoryd runs list -o json --data-dir "$FACTORY_DATA_DIR" | grep -o '"state":"success"' | wc -l)" = 1 ] \
  || { echo "expected exactly one successful run"; exit 1; }
factoryd audit list --data-dir "$FACTORY_DATA_DIR" | grep -q 'approval.approve' \
  || { echo "expected the approval in the audit log"; exit 1; }
factoryd consume jira-events --data-dir "$FACTORY_DATA_DIR" -e -f '%k\n' | grep -c 72d3162e | grep -qx 1 \
  || { echo "expected exactly one record for the delivery (the replay must add none)"; exit 1; }
[ -L "$FACTORY_DATA_DIR/factory/releases/invoices/current" ] \
  || { echo "expected a deployed release (current link)"; exit 1; }
