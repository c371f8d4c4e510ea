#!/bin/bash
# Scenario test of pvhad's metrics and dashboard in the lab (docs/metrics.md):
# 3 nodes, each pvhad serving HTTP on its lab address. A real Prometheus
# (Debian's, config written here, scrape every 1 s, storage in the test's
# directory, listening on loopback) scrapes the three agents; a headless
# Chromium keeps the dashboard of a survivor open. A guest runs; its node is
# powered off; through Prometheus's HTTP API a PromQL query sees the guest
# running on another node and the failover histogram's count go up, and the
# open dashboard shows the guest on its new node without a reload. Screenshots
# (desktop and phone-sized) go to BUILD/artifacts/dashboard-*.png.
# Every wait polls with a deadline. Prints ok/FAIL lines and "N passed,
# M failed"; exit 77 (skip) when it cannot run here.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for t in prometheus promtool chromium curl python3; do
	command -v "$t" >/dev/null || { echo "skip: $t not installed (deploy/install-deps)"; exit 77; }
done
CDP="python3 $SRC/tests/cluster/cdp.py"
ARTIFACTS=$BUILD/artifacts
mkdir -p "$ARTIFACTS"
rm -f "$ARTIFACTS"/dashboard-*.png

# Loopback ports of this test's own: the first free one from a base.
free_port() {
	local p=$1
	while (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
	echo "$p"
}
PROM_PORT=$(free_port 19090)
CDP_PORT=$(free_port 19222)
PROM=http://127.0.0.1:$PROM_PORT
PIDS=()
# Our own processes, by their ids, before the lab goes down (lib.sh's trap).
cleanup_own() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	return 0
}
trap 'cleanup_own; "$LAB" down --dir "$DIR" >/dev/null 2>&1; rm -rf "$DIR"; [[ -n ${PVHA_KEEP_LOGS:-} ]] || rm -rf "$LOGS_KEPT"' EXIT

up 3
addr() { echo "10.99.0.$((10 + ${1#n}))"; }

# Every agent serves metrics that promtool finds clean.
for n in n1 n2 n3; do
	url="http://$(addr "$n"):9639/metrics"
	end=$((SECONDS + DEADLINE_S))
	until body=$(curl -sf --max-time 5 "$url") && [[ $body == *'pvha_agent_quorate 1'* ]]; do
		((SECONDS < end)) || break
		sleep 0.2
	done
	if [[ $body == *"pvha_agent_up{node=\"$n\"} 1"* && $body == *'pvha_agent_quorate 1'* ]]; then
		ok "$n serves /metrics on $(addr "$n"):9639, quorate"
	else
		fail "$n serves /metrics on $(addr "$n"):9639 (got: ${body:0:200})"
	fi
	if lint=$(promtool check metrics <<<"$body" 2>&1) && [[ -z $lint ]]; then
		ok "promtool check metrics: $n's text is clean"
	else
		fail "promtool check metrics on $n's text: $lint"
	fi
done
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$(addr n1):9639/metrics")
[[ $code == 405 ]] && ok "POST is refused (405): the server is read-only" || fail "POST /metrics answered $code, not 405"

# A real Prometheus scraping the three agents.
mkdir -p "$DIR/prom/data"
cat >"$DIR/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: pvha
    static_configs:
      - targets: ['$(addr n1):9639', '$(addr n2):9639', '$(addr n3):9639']
EOF
if promtool check config "$DIR/prom/prometheus.yml" >/dev/null 2>&1; then ok "promtool check config"; else fail "promtool check config"; fi
prometheus --config.file="$DIR/prom/prometheus.yml" --storage.tsdb.path="$DIR/prom/data" \
	--web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$DIR/prom/prometheus.log" 2>&1 &
PIDS+=($!)

# query EXPR: the JSON result vector of an instant query.
query() {
	curl -sf --max-time 5 "$PROM/api/v1/query" --data-urlencode "query=$1" |
		python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["status"]=="success"; print(json.dumps(d["data"]["result"]))'
}
# wait_query EXPR: until the query returns at least one series; prints the result.
wait_query() {
	local end=$((SECONDS + DEADLINE_S)) r
	while ((SECONDS < end)); do
		r=$(query "$1" 2>/dev/null) && [[ -n $r && $r != "[]" ]] && { echo "$r"; return 0; }
		sleep 0.2
	done
	echo "     prometheus: $1 -> ${r:-no answer}" >&2
	return 1
}
if wait_query 'count(up{job="pvha"} == 1) == 3' >/dev/null; then
	ok "prometheus scrapes all three agents (up == 1)"
else
	fail "prometheus scrapes all three agents"
	tail -5 "$DIR/prom/prometheus.log"
fi

if pv n2 guest create c1 --image "$BUILD/guests/counter.elf" --mem 16M --disk 4M \
	--cmdline "interval=20" --start >/dev/null; then
	ok "guest create c1 --start"
else
	fail "guest create c1 --start"
	finish
fi
check_wait "c1 runs (as n3 sees it)" n3 c1 '"state":"running"'
owner=$(show n1 c1 | field owner)
[[ -n $owner ]] && ok "c1 placed on $owner" || { fail "c1 has an owner"; finish; }

running_on='pvha_guest_owner{guest="c1"} and on(instance) (pvha_guest_state{guest="c1",state="running"} == 1)'
if r=$(wait_query "$running_on") && [[ $r == *"\"node\": \"$owner\""* ]]; then
	ok "PromQL: c1 runs on $owner"
else
	fail "PromQL: c1 runs on $owner (${r:-nothing})"
fi
# reported_by NODE WHAT EXPR: the query returns a series that NODE's agent gave.
reported_by() {
	local r
	if r=$(wait_query "$3") && [[ $r == *"$(addr "$1"):9639"* ]]; then
		ok "PromQL: $2 (from $1)"
	else
		fail "PromQL: $2 (from $1; got ${r:-nothing})"
	fi
}
reported_by "$owner" "c1's VMM memory" 'pvha_guest_vmm_resident_memory_bytes{guest="c1"} > 0'
reported_by "$owner" "c1's heartbeat is fresh (< 5 s)" 'pvha_guest_heartbeat_age_seconds{guest="c1"} < 5'
reported_by "$owner" "c1's disk writes and flushes counted" \
	'pvha_guest_disk_flushes_total{guest="c1"} > 0 and on(instance, guest) pvha_guest_disk_written_bytes_total > 0'
failovers_before=$(query 'sum(pvha_failover_duration_seconds_count)' | grep -o '"[0-9.]*"\]' | tr -d '"]')
[[ -n $failovers_before ]] && ok "failover histogram present (count $failovers_before)" || fail "failover histogram present"

# The dashboard of a survivor, open in a headless Chromium for the rest of the test.
survivor=n1
[[ $owner == n1 ]] && survivor=n2
dash="http://$(addr "$survivor"):9639/"
chromium --headless --no-sandbox --disable-gpu --user-data-dir="$DIR/chromium" \
	--remote-debugging-port="$CDP_PORT" --window-size=1280,900 "$dash" >"$DIR/chromium.log" 2>&1 &
PIDS+=($!)
# page EXPR: EXPR's value in the open dashboard.
page() { $CDP "$CDP_PORT" eval "$1" 2>/dev/null; }
owner_js='(function(){var r=document.querySelector("#guests tr[data-guest=\"c1\"]");return r?r.dataset.state+" "+r.dataset.owner:"";})()'
nodes_js='Array.from(document.querySelectorAll("#nodes [data-node]")).map(function(e){return e.dataset.node;}).join(" ")'
end=$((SECONDS + DEADLINE_S))
until [[ $(page "$owner_js") == "\"running $owner\"" ]]; do ((SECONDS < end)) || break; sleep 0.2; done
if [[ $(page "$nodes_js") == '"n1 n2 n3"' ]]; then ok "dashboard shows the nodes n1 n2 n3"; else fail "dashboard shows the nodes (got $(page "$nodes_js"))"; fi
if [[ $(page "$owner_js") == "\"running $owner\"" ]]; then ok "dashboard shows c1 running on $owner"; else fail "dashboard shows c1 running on $owner (got $(page "$owner_js"))"; fi
$CDP "$CDP_PORT" screenshot "$ARTIFACTS/dashboard-before.png" 1280 900 &&
	$CDP "$CDP_PORT" screenshot "$ARTIFACTS/dashboard-phone-before.png" 390 844 &&
	ok "screenshots before the power-off" || fail "screenshots before the power-off"

# Power off c1's node.
"$LAB" poweroff "$owner" >/dev/null
ok "power-off $owner"
new=$(wait_owner_not "$survivor" c1 "$owner") && ok "pvha: c1 runs on $new" || fail "pvha: c1 runs on a survivor"
# The open page follows without a reload. The page polls every 500 ms and
# pvhad publishes every 250 ms: it shows the change within 2 s of pvha.
t0=$(date +%s%N)
end=$((SECONDS + DEADLINE_S))
until [[ $(page "$owner_js") == "\"running $new\"" ]]; do ((SECONDS < end)) || break; sleep 0.1; done
ms=$((($(date +%s%N) - t0) / 1000000))
if [[ $(page "$owner_js") == "\"running $new\"" ]]; then
	if ((ms <= 2000)); then ok "dashboard shows c1 on $new ${ms} ms after pvha did (no reload)"; else fail "dashboard followed in ${ms} ms (> 2000)"; fi
else
	fail "dashboard shows c1 on $new (got $(page "$owner_js"))"
fi
down_js="document.querySelector(\"#nodes [data-node=\\\"$owner\\\"]\").dataset.status"
end=$((SECONDS + DEADLINE_S))
until [[ $(page "$down_js") =~ ^\"(down|fenced|being\ fenced)\"$ ]]; do ((SECONDS < end)) || break; sleep 0.2; done
if [[ $(page "$down_js") =~ ^\"(down|fenced|being\ fenced)\"$ ]]; then ok "dashboard shows $owner as $(page "$down_js")"; else fail "dashboard shows $owner down (got $(page "$down_js"))"; fi
events_js='document.getElementById("events").textContent'
if [[ $(page "$events_js") == *"node $owner left"* ]]; then ok "dashboard lists the event: node $owner left"; else fail "dashboard lists node $owner leaving"; fi
$CDP "$CDP_PORT" screenshot "$ARTIFACTS/dashboard-after.png" 1280 900 &&
	$CDP "$CDP_PORT" screenshot "$ARTIFACTS/dashboard-phone-after.png" 390 844 &&
	ok "screenshots after the power-off" || fail "screenshots after the power-off"
for f in before after phone-before phone-after; do
	[[ $(head -c 8 "$ARTIFACTS/dashboard-$f.png" 2>/dev/null | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] ||
		fail "dashboard-$f.png is a PNG"
done
# A fresh load with plain flags (a second browser, its DOM once the page settled).
dom=$(timeout 60 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$DIR/chromium-dump" \
	--virtual-time-budget=5000 --dump-dom "$dash" 2>/dev/null)
if [[ $dom == *"data-guest=\"c1\" data-state=\"running\" data-owner=\"$new\""* ]]; then
	ok "chromium --dump-dom of a fresh load: c1 running on $new"
else
	fail "chromium --dump-dom of a fresh load shows c1 on $new (got $(grep -o '<tr data-guest[^>]*>' <<<"$dom"))"
fi
# Phone-sized: the page fits the width (no sideways scrolling).
phone_js='document.documentElement.scrollWidth <= document.documentElement.clientWidth'
if [[ $($CDP "$CDP_PORT" eval "$phone_js" 390 844) == true ]]; then ok "dashboard fits a 390 px wide phone"; else fail "dashboard fits a 390 px wide phone"; fi

# Prometheus sees the recovery.
if r=$(wait_query "$running_on") && [[ $r == *"\"node\": \"$new\""* && $r != *"\"node\": \"$owner\""* ]]; then
	ok "PromQL: c1 runs on $new"
else
	fail "PromQL: c1 runs on $new (${r:-nothing})"
fi
if wait_query "sum(pvha_failover_duration_seconds_count) > $failovers_before" >/dev/null; then
	ok "PromQL: the failover histogram's count went up"
else
	fail "PromQL: the failover histogram's count went up"
fi
if wait_query 'sum(pvha_recovery_duration_seconds_count) > 0' >/dev/null &&
	wait_query 'sum(pvha_fence_duration_seconds_count) > 0' >/dev/null; then
	ok "PromQL: a fence and a recovery were timed"
else
	fail "PromQL: a fence and a recovery were timed"
fi
if wait_query "up{job=\"pvha\",instance=\"$(addr "$owner"):9639\"} == 0" >/dev/null; then
	ok "PromQL: $owner's agent is down (up == 0)"
else
	fail "PromQL: $owner's agent is down"
fi
r=$(query 'histogram_quantile(1, sum by (le) (rate(pvha_failover_duration_seconds_bucket[5m])))' | grep -o '"[0-9.e+-]*"\]' | tr -d '"]')
echo "     failover took at most ${r:-?} s (histogram bucket bound)"

keep_logs metrics
finish
