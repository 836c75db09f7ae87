--[[
meshctx job_submit.lua: refuse Slurm jobs whose parallel sizes cannot fit their node and process counts.

Runs inside slurmctld, so per job it does only local arithmetic: no network, no subprocess, no file I/O
(a stalled call here would stall the whole controller). The one file it reads is meshctx_job.lua next to
it, once, when Slurm (re)loads this script. It checks the jobs that carry sizes in their comment, as
`meshctx render slurm` writes them:

    #SBATCH --comment=meshctx:strategy=fsdp2,tp=8,pp=2,cp=1,ep=1,dp_replicate=1,dp=4,nproc=8

Keys: strategy (fsdp2 | megatron_fsdp | megatron-fsdp | mfsdp | ddp), tp, pp, cp, ep, dp, dp_replicate,
and nproc (processes per node). How nodes and processes are counted when the comment does not say
(--nodes set or not, MIN-MAX ranges, --ntasks-per-node, --gpus-per-node, --gres, --gpus) is
meshctx_job.lua's shape(). Unset sizes count as 1 and dp is inferred; every node count of a range must
work. Jobs without "meshctx:" in the comment are not touched. slurm_job_modify re-checks a job when
`scontrol update` changes its comment, node count or GPUs. The rules are the arithmetic subset of the
meshctx planner (meshctx validate gives the full report and the fixes). Lua 5.1 to 5.4.
--]]

-- This script's directory (Slurm loads it by path, so the chunk's source is "@/etc/slurm/job_submit.lua").
local function script_dir()
	local source = debug.getinfo(1, "S").source
	return string.match(source, "^@(.*/)") or "./"
end

local job = dofile(script_dir() .. "meshctx_job.lua")

-- Axes each strategy cannot use beyond 1.
local UNSUPPORTED = {
	fsdp2 = {},
	megatron_fsdp = { "pp", "ep", "dp_replicate" },
	ddp = { "tp", "pp", "cp", "ep", "dp_replicate" },
}
local MAX_RANGE = 4096

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

-- nil when the job is fine, else the message for the user. `request` holds the job's counts (meshctx_job.shape).
function meshctx_verdict(fields, request)
	local sizes, bad = job.sizes(fields)
	if sizes == nil then
		return bad
	end
	local shape, missing = job.shape(sizes, request)
	if shape == nil then
		return missing
	end
	if shape.world ~= nil then
		local problems = meshctx_check(sizes.strategy, sizes, shape.world)
		if #problems > 0 then
			return string.format("meshctx: %d ranks (--gpus=%d): %s. Run `meshctx validate` for fixes.",
				shape.world, shape.world, table.concat(problems, "; "))
		end
		return nil
	end
	local low, high = shape.min_nodes, shape.max_nodes
	if high - low > MAX_RANGE then
		high = low + MAX_RANGE
	end
	for nodes = low, high do
		local problems = meshctx_check(sizes.strategy, sizes, nodes * shape.nproc)
		if #problems > 0 then
			return string.format("meshctx: %d nodes x %d processes: %s. Run `meshctx validate` for fixes.",
				nodes, shape.nproc, table.concat(problems, "; "))
		end
	end
	return nil
end

-- The counts of a job description (submission) or of a stored job record (modification).
local function counts(record)
	local low, high = job.count(record.min_nodes), job.count(record.max_nodes)
	if low == 1 and high == nil then
		low = nil -- a stored record keeps "nodes not given" as min 1, max 0
	end
	return {
		min_nodes = low, max_nodes = high,
		ntasks = job.count(record.num_tasks), ntasks_per_node = job.count(record.ntasks_per_node),
		gpus_per_node = job.gpu_count(record.tres_per_node), gpus = job.gpu_count(record.tres_per_job),
	}
end

local function refuse(message)
	slurm.log_user("%s", message)
	return slurm.ERROR
end

function slurm_job_submit(job_desc, part_list, submit_uid)
	local fields = job.parse_comment(job_desc.comment)
	if fields == nil then
		return slurm.SUCCESS
	end
	local message = meshctx_verdict(fields, counts(job_desc))
	if message ~= nil then
		return refuse(message)
	end
	return slurm.SUCCESS
end

-- `scontrol update`: job_desc holds only what changes, job_ptr the job as it is. Re-check the job as it would
-- become when the update touches the comment, the nodes or the GPUs.
function slurm_job_modify(job_desc, job_ptr, part_list, modify_uid)
	local changed = counts(job_desc)
	local touches = job_desc.comment ~= nil or changed.min_nodes ~= nil or changed.max_nodes ~= nil
		or job_desc.tres_per_node ~= nil or job_desc.tres_per_job ~= nil or changed.ntasks_per_node ~= nil
	if not touches then
		return slurm.SUCCESS
	end
	local fields = job.parse_comment(job_desc.comment or job_ptr.comment)
	if fields == nil then
		return slurm.SUCCESS
	end
	local request = counts(job_ptr)
	if changed.min_nodes ~= nil then
		request.min_nodes, request.max_nodes = changed.min_nodes, changed.max_nodes
	elseif changed.max_nodes ~= nil then
		request.max_nodes = changed.max_nodes
	end
	if job_desc.tres_per_node ~= nil then
		request.gpus_per_node = job.gpu_count(job_desc.tres_per_node)
	end
	if job_desc.tres_per_job ~= nil then
		request.gpus = job.gpu_count(job_desc.tres_per_job)
	end
	request.ntasks = changed.ntasks or request.ntasks
	request.ntasks_per_node = changed.ntasks_per_node or request.ntasks_per_node
	local message = meshctx_verdict(fields, request)
	if message ~= nil then
		-- scontrol shows only Slurm's generic error for a refused update: the reason goes to slurmctld's log too.
		slurm.log_info("meshctx: refused the update of job %s: %s", tostring(job_ptr.job_id), message)
		return refuse(message)
	end
	return slurm.SUCCESS
end

return slurm.SUCCESS
