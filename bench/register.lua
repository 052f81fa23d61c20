-- wrk script for bench/register.py: every request posts a new applicant to
-- POST /api/v1/registrations (and to the ceiling app of bench/ceiling.py, which
-- takes the same body). Valid for the real API (docs/registration.md): Ain (01),
-- first request; names, email and phone differ from one request to the next,
-- and from one run to the next (a random start per thread), so that no request
-- is a duplicate of another or reaches the per-contact cap.
--
--   wrk -t2 -c16 -d15s -s bench/register.lua http://127.0.0.1:PORT/api/v1/registrations

local counter = 0
local thread_number = 0
local letters = "abcdefghijklmnopqrstuvwxyz"

function setup(thread)
  thread_number = thread_number + 1
  thread:set("thread_number", thread_number)
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_number or 0) * 7919 + math.floor(os.clock() * 1e6))
  run = math.random(0, 26 ^ 4 - 1)
end

-- A number written with letters only (names accept no digits).
local function spelled(number, width)
  local out = {}
  for _ = 1, width do
    local index = number % 26
    out[#out + 1] = letters:sub(index + 1, index + 1)
    number = math.floor(number / 26)
  end
  return table.concat(out)
end

function request()
  counter = counter + 1
  local unique = (thread_number or 0) * 100000000 + counter
  local family = "Bench" .. spelled(run, 4) .. spelled(unique, 7)
  local body = string.format(
    '{"prefecture":"01","procedure":"first_request","family_name":"%s","given_names":"Test",'
    .. '"birth_date":"1980-0%d-1%d","nationality":"MA","email":"%s@example.org",'
    .. '"phone":"+3361%07d","consent":true,"language":"fr"}',
    family, counter % 9 + 1, counter % 10, family:lower(), (run * 1000 + unique) % 10000000)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

-- Status codes seen by each thread, summed in done().
statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local threads = {}
local setup_number = setup
function setup(thread)
  setup_number(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do total[status] = (total[status] or 0) + count end
  end
  local codes = {}
  for status, count in pairs(total) do codes[#codes + 1] = status .. ":" .. count end
  local p = function(q) return latency:percentile(q) / 1000 end
  io.write(string.format("RESULT requests=%d seconds=%.3f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f "
    .. "errors_connect=%d errors_read=%d errors_write=%d errors_timeout=%d statuses=%s\n",
    summary.requests, summary.duration / 1e6, p(50), p(90), p(99), latency.max / 1000,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, table.concat(codes, ",")))
end
