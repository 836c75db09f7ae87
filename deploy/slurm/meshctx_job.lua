--[[
meshctx_job.lua: what a Slurm job asks for, read one way by both cli_filter.lua and job_submit.lua.

Slurm loads each plugin script on its own, from the directory of slurm.conf; both scripts load this
file from their own directory with dofile (once, when Slurm (re)loads the script, never per job),
so install the three files side by side. No package.path, no module search on the controller.

  parse_comment(comment)  the fields of "meshctx:strategy=fsdp2,tp=8,...,nproc=8" (nil without it)
  sizes(fields)           the strategy and integer sizes, or nil and the message naming the field
  gpu_count(text)         the GPU count of "gres:gpu:8", "gres/gpu:h100:8", "h100:8", "8"
  count(value)            a positive count, or nil for Slurm's "unset" values (NO_VAL, NO_VAL16, ...)
  shape(sizes, request)   the node range and processes per node (or the world size) to check
  verdict(fields, request) nil for a good job, else the message (and, for a job that breaks a rule, its
                          sizes and shape): the planner's divisibility rules and no more processes per
                          node than GPUs per node

Works with Lua 5.1 to 5.4 and uses no library beyond string, math and table.
--]]

local M = {}

M.STRATEGIES = {
	fsdp2 = "fsdp2", megatron_fsdp = "megatron_fsdp", ["megatron-fsdp"] = "megatron_fsdp",
	mfsdp = "megatron_fsdp", ddp = "ddp",
}
-- The comment's keys, as the meshctx CLI flags that take them.
M.FLAGS = {
	{ "tp", "--tp" }, { "pp", "--pp" }, { "cp", "--cp" }, { "ep", "--ep" },
	{ "dp", "--dp" }, { "dp_replicate", "--dp-replicate" },
}
local KEYS = { tp = true, pp = true, cp = true, ep = true, dp = true, dp_replicate = true, nproc = true }
-- Slurm's "not given" markers: NO_VAL16, INFINITE16, NO_VAL, INFINITE, NO_VAL64, INFINITE64.
local UNSET = {
	[65534] = true, [65535] = true, [4294967294] = true, [4294967295] = true,
	[18446744073709551614] = true, [18446744073709551615] = true,
}

-- "meshctx:tp=8,pp=2" anywhere in a comment -> {key = "value"}; nil without the marker.
function M.parse_comment(comment)
	if type(comment) ~= "string" then
		return nil
	end
	local spec = string.match(comment, "meshctx:(%S*)")
	if spec == nil then
		return nil
	end
	local fields = {}
	for key, value in string.gmatch(spec, "([%w_%-]+)=([^,]*)") do
		fields[key] = value
	end
	return fields
end

local function positive_integer(value)
	local number = tonumber(value)
	if number ~= nil and number >= 1 and number == math.floor(number) then
		return number
	end
	return nil
end

-- {strategy = "fsdp2", tp = 8, ...} from the parsed comment; nil and a message on a bad key or value.
function M.sizes(fields)
	local strategy = M.STRATEGIES[fields.strategy or "fsdp2"]
	if strategy == nil then
		return nil, "meshctx: unknown strategy " .. tostring(fields.strategy)
			.. " in the job's comment (use fsdp2, megatron_fsdp or ddp)"
	end
	local sizes = { strategy = strategy }
	for key, value in pairs(fields) do
		if key ~= "strategy" then
			if not KEYS[key] then
				return nil, "meshctx: unknown key " .. key .. " in the job's comment (keys: strategy, tp, pp, cp, ep, "
					.. "dp, dp_replicate, nproc)"
			end
			if value ~= "" then
				local number = positive_integer(value)
				if number == nil then
					return nil, string.format("meshctx: %s in the job's comment must be an integer >= 1, got %q", key, value)
				end
				sizes[key] = number
			end
		end
	end
	return sizes
end

-- A count Slurm gave, or nil when the user did not give one.
function M.count(value)
	local number = tonumber(value)
	if number == nil or UNSET[number] or number < 1 or number ~= math.floor(number) then
		return nil
	end
	return number
end

-- GPUs in a GRES/TRES string: "gres:gpu:8", "gres/gpu:h100:8", "gpu:8", "h100:8", "8" or a comma list of them
-- ("gres:gpu:4,gres:nic:1"). Items naming another resource do not count.
function M.gpu_count(text)
	if type(text) ~= "string" or text == "" then
		return nil
	end
	local total = nil
	for item in string.gmatch(text, "[^,]+") do
		local resource = string.match(item, "^gres[:/]([^:=]+)")
		if resource == nil or resource == "gpu" then
			local count = string.match(item, "^(%d+)$") or string.match(item, "[:=](%d+)$")
			if count ~= nil then
				total = (total or 0) + tonumber(count)
			end
		end
	end
	return total
end

--[[
The world to check, from the request's counts (each a number or nil when not given):
  min_nodes, max_nodes       --nodes N or MIN-MAX
  ntasks, ntasks_per_node    --ntasks, --ntasks-per-node
  gpus_per_node, gpus        --gpus-per-node / --gres=gpu:N, and --gpus (the whole job's)
Nodes: --nodes, else ntasks / ntasks-per-node when both are given, else 1 (Slurm's default).
Processes per node: nproc in the comment; else --ntasks-per-node above 1 (each task is a rank); else the
GPUs per node (one torchrun per node starts one process per GPU). With only --gpus=G the world is G ranks
whatever the node count. Returns {min_nodes, max_nodes, nproc} or {world}; nil and a message when there is
no process count to check.
--]]
function M.shape(sizes, request)
	local low, high = request.min_nodes, request.max_nodes
	if low == nil then
		local tasks, per_node = request.ntasks, request.ntasks_per_node
		if tasks ~= nil and per_node ~= nil and tasks > per_node then
			low = math.floor((tasks + per_node - 1) / per_node)
		else
			low = 1
		end
		high = low
	elseif high == nil or high < low then
		high = low
	end
	local nproc = sizes.nproc
	if nproc == nil and request.ntasks_per_node ~= nil and request.ntasks_per_node > 1 then
		nproc = request.ntasks_per_node
	end
	nproc = nproc or request.gpus_per_node
	if nproc ~= nil then
		return { min_nodes = low, max_nodes = high, nproc = nproc }
	end
	if request.gpus ~= nil then
		return { world = request.gpus }
	end
	return nil, "meshctx: the job's comment gives sizes but the job gives no process count: add nproc=N to the "
		.. "comment (processes per node), or ask for GPUs (--gpus-per-node, --gres=gpu:N, --gpus) or --ntasks-per-node"
end

-- Axes each strategy cannot use beyond 1.
local UNSUPPORTED = {
	fsdp2 = {},
	megatron_fsdp = { "pp", "ep", "dp_replicate" },
	ddp = { "tp", "pp", "cp", "ep", "dp_replicate" },
}
local MAX_RANGE = 4096

-- Every problem of one world size, as a list of messages (empty when valid).
local function check(strategy, s, world)
	local problems = {}
	local size = {}
	for _, name in ipairs({ "tp", "pp", "cp", "ep", "dp_replicate" }) do
		size[name] = s[name] or 1
	end
	for _, name in ipairs(UNSUPPORTED[strategy]) do
		if size[name] > 1 then
			table.insert(problems, string.format("%s does not support %s_size %d (use 1)", strategy, name, size[name]))
			size[name] = 1
		end
	end
	local tp, pp, cp, ep, rep = size.tp, size.pp, size.cp, size.ep, size.dp_replicate
	local dp = s.dp
	if dp ~= nil then
		if pp * dp * cp * tp ~= world then
			table.insert(problems, string.format(
				"pp·dp·cp·tp = %d·%d·%d·%d = %d, but the job has %d ranks", pp, dp, cp, tp, pp * dp * cp * tp, world))
			return problems
		end
	else
		if world % (tp * cp * pp) ~= 0 then
			table.insert(problems, string.format(
				"%d ranks are not divisible by tp·cp·pp = %d, so dp cannot be inferred", world, tp * cp * pp))
			return problems
		end
		dp = math.floor(world / (tp * cp * pp))
	end
	if dp % rep ~= 0 then
		table.insert(problems, string.format("dp %d is not divisible by dp_replicate %d", dp, rep))
	elseif strategy == "fsdp2" and rep > 1 and rep == dp then
		table.insert(problems, string.format("dp_replicate %d equals dp: pure replication is ddp", rep))
	end
	if ep > 1 and (dp * cp * tp) % ep ~= 0 then
		table.insert(problems, string.format("dp·cp·tp = %d is not divisible by ep %d", dp * cp * tp, ep))
	end
	return problems
end

--[[
The verdict on a job: nil when it is fine, else the message for the user. `request` holds the job's counts
(see shape()). A job that cannot be read (a bad comment, no process count) gives only the message; a job
that was read but breaks a rule also gives its sizes and shape, from which `meshctx validate` can explain it.
--]]
function M.verdict(fields, request)
	local sizes, bad = M.sizes(fields)
	if sizes == nil then
		return bad
	end
	local shape, missing = M.shape(sizes, request)
	if shape == nil then
		return missing
	end
	local gpus = request.gpus_per_node
	if shape.nproc ~= nil and gpus ~= nil and shape.nproc > gpus then
		return string.format("meshctx: %d processes per node on %d GPUs per node: each process drives one GPU "
			.. "(use nproc=%d or fewer on more nodes, or ask for %d GPUs per node). Run `meshctx validate` for fixes.",
			shape.nproc, gpus, gpus, shape.nproc), sizes, shape
	end
	if shape.world ~= nil then
		local problems = check(sizes.strategy, sizes, shape.world)
		if #problems > 0 then
			return string.format("meshctx: %d ranks (--gpus=%d): %s. Run `meshctx validate` for fixes.",
				shape.world, shape.world, table.concat(problems, "; ")), sizes, shape
		end
		return nil
	end
	local low, high = shape.min_nodes, shape.max_nodes
	if high - low > MAX_RANGE then
		high = low + MAX_RANGE
	end
	for nodes = low, high do
		local problems = check(sizes.strategy, sizes, nodes * shape.nproc)
		if #problems > 0 then
			return string.format("meshctx: %d nodes x %d processes: %s. Run `meshctx validate` for fixes.",
				nodes, shape.nproc, table.concat(problems, "; ")), sizes, shape
		end
	end
	return nil
end

return M
