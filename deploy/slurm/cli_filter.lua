--[[
meshctx cli_filter.lua: check sbatch/salloc/srun sizes with the meshctx CLI before submission.

Runs in the user's sbatch/salloc/srun process (not in slurmctld), so it may start a subprocess: it runs
`meshctx validate` with the sizes from the job's comment (the format `meshctx render slurm` writes, see
job_submit.lua) and the node and process counts of the command line, read by meshctx_job.lua (loaded from
this script's directory: install both next to slurm.conf), and refuses the job with meshctx's full report
(problems, hints, suggested sizes) when the topology is invalid.

Refused (the job is not submitted): meshctx validate says INVALID, the comment is unreadable (unknown key,
a size that is not an integer >= 1, unknown strategy), the job gives no process count, or --nodes cannot be
read. Passed unchecked, with one log line: the CLI is missing, crashes or answers anything else; then
job_submit.lua still enforces the rules inside slurmctld. A cli_filter can be bypassed by users (their own
SLURM_CONF), which is why both exist.

The CLI is `meshctx` on PATH, or the command in MESHCTX_CLI (e.g. "/opt/meshctx/bin/meshctx").
--]]

local function script_dir()
	local source = debug.getinfo(1, "S").source
	return string.match(source, "^@(.*/)") or "./"
end

local job = dofile(script_dir() .. "meshctx_job.lua")

-- Only plain tokens go on the command line: nothing a shell would interpret.
local function safe(value)
	return type(value) == "string" and string.match(value, "^[%w_:%-%.]+$") ~= nil
end

-- --nodes as the CLI filter sees it: "2", "2-4", or "1-0" when the user gave none. nil, nil when not given.
local function node_range(value)
	if value == nil or value == "" then
		return nil, nil, nil
	end
	local low, high = string.match(value, "^(%d+)%-(%d+)$")
	if low == nil then
		low = string.match(value, "^(%d+)$")
		high = low
	end
	if low == nil then
		return nil, nil, "meshctx: cannot read --nodes=" .. string.format("%q", value) .. "; give N or MIN-MAX"
	end
	low, high = tonumber(low), tonumber(high)
	if high == 0 then
		if low <= 1 then
			return nil, nil, nil -- Slurm's "1-0": --nodes not given
		end
		high = nil
	end
	return job.count(low), job.count(high), nil
end

-- The `meshctx validate` command line for these options; nil when not a meshctx job; nil and a refusal.
function meshctx_command(options)
	local fields = job.parse_comment(options["comment"])
	if fields == nil then
		return nil
	end
	local sizes, bad = job.sizes(fields)
	if sizes == nil then
		return nil, bad
	end
	local low, high, unreadable = node_range(options["nodes"])
	if unreadable ~= nil then
		return nil, unreadable
	end
	local request = {
		min_nodes = low, max_nodes = high,
		ntasks = job.count(options["ntasks"]), ntasks_per_node = job.count(options["ntasks-per-node"]),
		gpus_per_node = job.gpu_count(options["gpus-per-node"]) or job.gpu_count(options["gres"]),
		gpus = job.gpu_count(options["gpus"]),
	}
	local shape, missing = job.shape(sizes, request)
	if shape == nil then
		return nil, missing
	end
	local args = { "validate", "--strategy", sizes.strategy }
	if shape.world ~= nil then
		table.insert(args, "--world-size")
		table.insert(args, tostring(shape.world))
	else
		local nodes = tostring(shape.min_nodes)
		if shape.max_nodes ~= shape.min_nodes then
			nodes = nodes .. ":" .. tostring(shape.max_nodes)
		end
		for _, arg in ipairs({ "--nnodes", nodes, "--nproc-per-node", tostring(shape.nproc) }) do
			table.insert(args, arg)
		end
	end
	for _, pair in ipairs(job.FLAGS) do
		if sizes[pair[1]] ~= nil then
			table.insert(args, pair[2])
			table.insert(args, tostring(sizes[pair[1]]))
		end
	end
	for _, arg in ipairs(args) do
		if not safe(arg) then
			return nil, "meshctx: refusing the unsafe value " .. string.format("%q", arg) .. " in the job's sizes"
		end
	end
	local cli = os.getenv("MESHCTX_CLI") or "meshctx"
	return cli .. " " .. table.concat(args, " ")
end

-- What the CLI's answer means: "pass", "refuse", or "unchecked" (it did not answer as meshctx validate does).
function meshctx_outcome(status, report)
	if status == 0 then
		return "pass"
	end
	if string.find(report, "Traceback", 1, true) then
		return "unchecked"
	end
	if status == 1 and string.find(report, "INVALID", 1, true) then -- validate's report of an invalid topology
		return "refuse"
	end
	if status == 2 and string.find(report, "usage: meshctx", 1, true) then -- the CLI refused the request itself
		return "refuse"
	end
	return "unchecked"
end

local function last_line(text)
	local line = ""
	for item in string.gmatch(text, "[^\n]+") do
		line = item
	end
	return line
end

function slurm_cli_pre_submit(options, pack_offset)
	local command, refusal = meshctx_command(options)
	if refusal ~= nil then
		slurm.log_error("%s", refusal)
		return slurm.ERROR
	end
	if command == nil then
		return slurm.SUCCESS
	end
	local pipe = io.popen(command .. " 2>&1; echo \"MESHCTX_EXIT=$?\"")
	if pipe == nil then
		slurm.log_info("meshctx: could not run %s; not checked here (job_submit.lua still checks it)", command)
		return slurm.SUCCESS
	end
	local output = pipe:read("*a")
	pipe:close()
	local status = tonumber(string.match(output, "MESHCTX_EXIT=(%d+)%s*$"))
	local report = string.gsub(output, "MESHCTX_EXIT=%d+%s*$", "")
	local outcome = meshctx_outcome(status, report)
	if outcome == "pass" then
		return slurm.SUCCESS
	end
	if outcome == "refuse" then
		slurm.log_error("meshctx refused this job's sizes:\n%s", report)
		return slurm.ERROR
	end
	slurm.log_info("meshctx: %s exited with %s (%s); not checked here (job_submit.lua still checks it)",
		command, tostring(status), last_line(report))
	return slurm.SUCCESS
end

function slurm_cli_setup_defaults(options, early_pass)
	return slurm.SUCCESS
end

function slurm_cli_post_submit(offset, job_id, step_id)
	return slurm.SUCCESS
end
