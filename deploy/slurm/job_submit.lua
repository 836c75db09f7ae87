--[[
meshctx job_submit.lua: refuse Slurm jobs whose parallel sizes cannot fit their node count.

Runs inside slurmctld, so it does only local arithmetic: no network, no subprocess, no file I/O
(a stalled call here would stall the whole controller). It checks the jobs that carry sizes in
their comment, as `meshctx render slurm` writes them:

    #SBATCH --comment=meshctx:strategy=fsdp2,tp=8,pp=2,cp=1,ep=1,dp_replicate=1,dp=4,nproc=8

Keys: strategy (fsdp2 | megatron_fsdp | megatron-fsdp | mfsdp | ddp), tp, pp, cp, ep, dp,
dp_replicate, and nproc (processes per node; else the GPU count of --gpus-per-node / --gres).
Unset sizes count as 1 and dp is inferred. Nodes come from --nodes (MIN or MIN-MAX: every count
in the range must work). Jobs without "meshctx:" in the comment are not touched. The rules are the
arithmetic subset of the meshctx planner (meshctx validate gives the full report and the fixes).
Works with Lua 5.1 to 5.4.
--]]

local NAMES = { tp = true, pp = true, cp = true, ep = true, dp = true, dp_replicate = true, nproc = true }
local STRATEGIES = {
	fsdp2 = "fsdp2", megatron_fsdp = "megatron_fsdp", ["megatron-fsdp"] = "megatron_fsdp",
	mfsdp = "megatron_fsdp", ddp = "ddp",
}
-- Axes each strategy cannot use beyond 1.
local UNSUPPORTED = {
	fsdp2 = {},
	megatron_fsdp = { "pp", "ep", "dp_replicate" },
	ddp = { "tp", "pp", "cp", "ep", "dp_replicate" },
}
local MAX_RANGE = 4096

-- "meshctx:tp=8,pp=2" inside a comment -> table of key -> string, or nil without the marker.
function meshctx_parse_comment(comment)
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

-- GPUs per node from a TRES string such as "gres/gpu:8" or "gres/gpu:h100:8".
function meshctx_gpus_per_node(tres)
	if type(tres) ~= "string" then
		return nil
	end
	for item in string.gmatch(tres, "[^,]+") do
		if string.find(item, "gpu") then
			local count = string.match(item, ":(%d+)$")
			if count then
				return tonumber(count)
			end
		end
	end
	return nil
end

local function is_size(v)
	return type(v) == "number" and v >= 1 and v == math.floor(v)
end

-- Every problem of one world size, as a list of messages (empty when valid).
function meshctx_check(strategy, s, world)
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

-- nil when the job is fine (or not a meshctx job), else the message for the user.
function meshctx_verdict(fields, min_nodes, max_nodes, tres_per_node)
	local strategy = STRATEGIES[fields.strategy or "fsdp2"]
	if strategy == nil then
		return "meshctx: unknown strategy " .. tostring(fields.strategy) .. " (use fsdp2, megatron_fsdp or ddp)"
	end
	local sizes = {}
	for key, value in pairs(fields) do
		if key ~= "strategy" then
			if not NAMES[key] then
				return "meshctx: unknown key " .. key .. " in the comment"
			end
			if value ~= "" then
				local number = tonumber(value)
				if not is_size(number) then
					return string.format("meshctx: %s must be an integer >= 1, got %q", key, value)
				end
				sizes[key] = number
			end
		end
	end
	local nproc = sizes.nproc or meshctx_gpus_per_node(tres_per_node)
	if not is_size(nproc) or not is_size(min_nodes) then
		return nil -- nothing to check against: the CLI filter and the job itself still check
	end
	local high = is_size(max_nodes) and max_nodes or min_nodes
	if high - min_nodes > MAX_RANGE then
		high = min_nodes + MAX_RANGE
	end
	for nodes = min_nodes, high do
		local problems = meshctx_check(strategy, sizes, nodes * nproc)
		if #problems > 0 then
			return string.format("meshctx: %d nodes x %d processes: %s. Run `meshctx validate` for fixes.",
				nodes, nproc, table.concat(problems, "; "))
		end
	end
	return nil
end

local function node_count(value)
	if value == nil or value == slurm.NO_VAL or value == slurm.NO_VAL64 then
		return nil
	end
	return value
end

function slurm_job_submit(job_desc, part_list, submit_uid)
	local fields = meshctx_parse_comment(job_desc.comment)
	if fields == nil then
		return slurm.SUCCESS
	end
	local message = meshctx_verdict(fields, node_count(job_desc.min_nodes), node_count(job_desc.max_nodes),
		job_desc.tres_per_node)
	if message ~= nil then
		slurm.log_user("%s", message)
		return slurm.ERROR
	end
	return slurm.SUCCESS
end

function slurm_job_modify(job_desc, job_ptr, part_list, modify_uid)
	return slurm.SUCCESS
end

return slurm.SUCCESS
