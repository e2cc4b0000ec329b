-- wrk script: POST /collections/$COLLECTION/points/query with one of 256 pre-generated random queries.
local dim = tonumber(os.getenv("DIM") or "128")
local collection = os.getenv("COLLECTION") or "load"
local bodies = {}
local n = 0

init = function(args)
  math.randomseed(1234 + (tonumber(args[1]) or 0))
  for b = 1, 256 do
    local v = {}
    for i = 1, dim do v[i] = string.format("%.4f", math.random() * 2 - 1) end
    bodies[b] = '{"query":[' .. table.concat(v, ",") .. '],"limit":10,"with_payload":true}'
  end
end

request = function()
  n = n + 1
  return wrk.format("POST", "/collections/" .. collection .. "/points/query",
                    {["Content-Type"] = "application/json"}, bodies[(n % 256) + 1])
end
