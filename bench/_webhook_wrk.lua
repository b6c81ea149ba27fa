-- wrk script for bench/webhooks.py: sends pre-signed deliveries, each once, and counts answers.
-- The request file has one delivery per line: webhook-id, webhook-timestamp, webhook-signature
-- and the body, separated by tabs. Each wrk thread takes every n-th line (n = threads).
local deliveries = {}
local threads = {}
local index = 0

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local path, count = args[1], tonumber(args[2])
  local lines = {}
  for line in io.lines(path) do
    lines[#lines + 1] = line
  end
  for i = id + 1, #lines, count do
    local wid, ts, sig, body = lines[i]:match("([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)")
    deliveries[#deliveries + 1] = wrk.format("POST", nil, {
      ["Content-Type"] = "application/json", ["webhook-id"] = wid,
      ["webhook-timestamp"] = ts, ["webhook-signature"] = sig}, body)
  end
  accepted, other, exhausted = 0, 0, 0
end

function request()
  index = index + 1
  if index > #deliveries then
    exhausted = exhausted + 1
    return wrk.format("GET", "/healthz")
  end
  return deliveries[index]
end

function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local a, o, e = 0, 0, 0
  for _, thread in ipairs(threads) do
    a = a + thread:get("accepted")
    o = o + thread:get("other")
    e = e + thread:get("exhausted")
  end
  io.write(string.format("WRK accepted=%d other=%d exhausted=%d p50_us=%d p95_us=%d p99_us=%d\n",
    a, o, e, latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
