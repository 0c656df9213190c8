-- wrk script for the HTTP workloads (bench/http.py): cycles through a list of requests read
-- from a tab-separated file given after `--` (method, path, bearer token, JSON body or empty),
-- so that each request may carry another user's token and go to another conversation, and
-- POST appends send their JSON body. At the end, prints one JSON line with the figures.
--
--   wrk -t1 -c16 -d10s -s bench/wrk/requests.lua http://127.0.0.1:8000 -- requests.tsv

local requests = {}
local index = 0

function init(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    local method, path, token, body = line:match("^(%u+)\t([^\t]*)\t([^\t]*)\t?(.*)$")
    if method then
      local headers = { ["Authorization"] = "Bearer " .. token }
      if body == "" then
        body = nil
      else
        headers["Content-Type"] = "application/json"
      end
      requests[#requests + 1] = wrk.format(method, path, headers, body)
    end
  end
  file:close()
end

function request()
  index = index % #requests + 1
  return requests[index]
end

function done(summary, latency, _)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
